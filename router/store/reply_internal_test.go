package store

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A script reply of another shape than its reader expects (the script
// changed, its reader did not) is an error naming the step, never a panic
// or a misread.
func TestReplyShapeChecked(t *testing.T) {
	var a, b int64
	tests := map[string]func() error{
		"ints: none":     func() error { return replyInts(nil, &a, &b) },
		"ints: short":    func() error { return replyInts([]any{int64(1)}, &a, &b) },
		"ints: long":     func() error { return replyInts([]any{int64(1), int64(2), int64(3)}, &a, &b) },
		"ints: a string": func() error { return replyInts([]any{int64(1), "2"}, &a, &b) },
		"stats: short":   func() error { _, err := parseStats("t", []any{int64(1)}); return err },
		"stats: no counters": func() error {
			_, err := parseStats("t", []any{int64(0), int64(0), int64(0), int64(0), "", "x"})
			return err
		},
		"stats: odd counters": func() error {
			_, err := parseStats("t", []any{int64(0), int64(0), int64(0), int64(0), "", []any{"dead"}})
			return err
		},
		"members: a member short": func() error { _, err := parseMembers([]any{int64(1), "id", int64(2)}); return err },
		"trigger change: empty":   func() error { _, _, err := parseChange(nil); return err },
		"trigger change: short":   func() error { _, _, err := parseChange([]any{int64(1), "epoch"}); return err },
		"claim: short":            func() error { _, err := (&Store{}).claimed(context.Background(), "t", []any{nil}); return err },
		"claim: items not a list": func() error {
			_, err := (&Store{}).claimed(context.Background(), "t", []any{"x", int64(0), "", "", "closed", "0", int64(0)})
			return err
		},
		"claim: an item short": func() error {
			_, err := (&Store{}).claimed(context.Background(), "t", []any{[]any{[]any{"1-0", "1"}}, int64(0), "", "", "closed", "0", int64(0)})
			return err
		},
	}
	for name, call := range tests {
		t.Run(name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = call() })
			require.True(t, errors.Is(err, errReplyShape), "got %v", err)
		})
	}

	require.NoError(t, replyInts([]any{int64(4), int64(-1)}, &a, &b))
	require.Equal(t, [2]int64{4, -1}, [2]int64{a, b})
	qs, err := parseStats("t", []any{int64(1), int64(2), int64(3), int64(4), "9-0", []any{"dead", "7"}})
	require.NoError(t, err)
	require.Equal(t, QueueStats{Ready: 1, InFlight: 2, Delayed: 3, DeadLetters: 4, OldestReady: "9-0", Counters: map[string]string{"dead": "7"}}, qs)
}
