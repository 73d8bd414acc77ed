package connectors_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/connectors"
)

// onceSource hands out messages made at most once, with the sequence
// numbers given, and records their acks.
type onceSource struct {
	mu    sync.Mutex
	seqs  []int64
	acked []error
}

func (s *onceSource) Connect(context.Context) error { return nil }
func (s *onceSource) Close(context.Context) error   { return nil }
func (s *onceSource) Read(ctx context.Context) (*connectors.Message, error) {
	s.mu.Lock()
	if len(s.seqs) == 0 {
		s.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	seq := s.seqs[0]
	s.seqs = s.seqs[1:]
	s.mu.Unlock()
	return &connectors.Message{Event: ev("e"), Once: &connectors.Once{Key: "k", Seq: seq},
		Ack: func(_ context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.acked = append(s.acked, err)
			return nil
		}}, nil
}

// onceSink publishes a sequence number greater than the last one; its
// Publish must never be used for Once messages.
type onceSink struct {
	mu        sync.Mutex
	last      int64
	published []int64
	fail      int // transient failures to inject
}

func (s *onceSink) Publish(context.Context, []*pb.CloudEvent) error {
	return errors.New("Publish used for a Once message")
}

func (s *onceSink) PublishOnce(_ context.Context, key string, seq int64, _ []*pb.CloudEvent) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return false, errors.New("store unavailable")
	}
	if key != "k" || seq <= s.last {
		return false, nil
	}
	s.last = seq
	s.published = append(s.published, seq)
	return true, nil
}

// Once messages go through PublishOnce one by one; a number already taken
// is acknowledged without counting as an event; a transient failure is
// retried and publishes nothing twice.
func TestRunnerPublishesOnceMessagesOnce(t *testing.T) {
	src := &onceSource{seqs: []int64{1, 2, 2, 1, 3}}
	sink := &onceSink{fail: 1}
	r := runWith(t, src, sink)
	waitFor(t, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.acked) == 5
	})
	for _, err := range src.acked {
		if err != nil {
			t.Fatalf("ack with %v", err)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.published) != 3 || sink.published[2] != 3 {
		t.Fatalf("published %v, want [1 2 3]", sink.published)
	}
	if n := r.Status()[0].Events; n != 3 {
		t.Fatalf("status counts %d events, want the 3 published", n)
	}
}

// A sink that cannot publish at most once fails such messages (retried,
// shown in the status), never publishing them plainly.
func TestRunnerRefusesOnceWithoutAOnceSink(t *testing.T) {
	src := &onceSource{seqs: []int64{1}}
	sink := &pickySink{}
	r := runWith(t, src, sink)
	waitFor(t, func() bool { return strings.Contains(r.Status()[0].LastError, connectors.ErrNoOnceSink.Error()) })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.got) != 0 {
		t.Fatalf("published plainly: %v", sink.got)
	}
}
