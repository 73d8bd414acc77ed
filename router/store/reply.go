package store

import (
	"errors"
	"fmt"
)

// errReplyShape means a script answered in a shape its reader does not
// know: the Go code and the Lua script disagree (one changed without the
// other). Scripts' replies are read by position, so every reader checks
// the shape first and fails with this error rather than panic on a short
// reply or misread a long one.
var errReplyShape = errors.New("unexpected script reply")

// Readers wrap these errors with what they read ("ack orders: ..."), only
// when there is one: a reply read on the delivery path costs no string.

// replyLen checks that a script's reply v has exactly n elements.
func replyLen(v []any, n int) error {
	if len(v) != n {
		return fmt.Errorf("%w: %d elements, want %d", errReplyShape, len(v), n)
	}
	return nil
}

// replyInts reads a reply of exactly len(out) integers into out.
func replyInts(v []any, out ...*int64) error {
	if err := replyLen(v, len(out)); err != nil {
		return err
	}
	for i, x := range v {
		n, ok := x.(int64)
		if !ok {
			return fmt.Errorf("%w: element %d is %T, want an integer", errReplyShape, i, x)
		}
		*out[i] = n
	}
	return nil
}
