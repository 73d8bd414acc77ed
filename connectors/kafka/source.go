package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// maxPollRecords bounds the records taken from the client per poll.
const maxPollRecords = 500

// topicRE is what Kafka accepts as a topic name.
var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Source consumes topics as a member of a consumer group.
type Source struct {
	log      *slog.Logger
	brokers  []string
	topics   []string
	group    string
	clientID string
	session  time.Duration
	reset    kgo.Offset
	dec      decoder

	// Owned by the Read goroutine (and Connect/Close).
	cl  *kgo.Client
	buf []*kgo.Record

	mu     sync.Mutex
	nacked map[topicPartition]int64 // lowest refused offset per partition
	dirty  bool                     // marks not yet committed
}

type topicPartition struct {
	topic     string
	partition int32
}

// New builds a kafka source.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		log: env.Logger, brokers: cfg.StringList(fieldBrokers), topics: cfg.StringList(fieldTopics),
		group: cfg.String(fieldGroup), clientID: cfg.String(fieldClientID), session: cfg.Duration(fieldSession),
		nacked: map[topicPartition]int64{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var errs []error
	if len(s.brokers) == 0 {
		errs = append(errs, fmt.Errorf("fields.%s: want at least one broker", fieldBrokers))
	}
	for _, b := range s.brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("fields.%s: %q: want host:port", fieldBrokers, b))
		}
	}
	if len(s.topics) == 0 {
		errs = append(errs, fmt.Errorf("fields.%s: want at least one topic", fieldTopics))
	}
	for _, t := range s.topics {
		if !topicRE.MatchString(t) || t == "." || t == ".." {
			errs = append(errs, fmt.Errorf("fields.%s: %q is not a Kafka topic name (letters, digits, '.', '_', '-')", fieldTopics, t))
		}
	}
	if s.group == "" {
		s.group = "switchyard-" + env.Name
	}
	switch st := cfg.String(fieldStart); st {
	case "earliest":
		s.reset = kgo.NewOffset().AtStart()
	case "latest":
		s.reset = kgo.NewOffset().AtEnd()
	default:
		errs = append(errs, fmt.Errorf("fields.%s: %q: want earliest or latest", fieldStart, st))
	}
	if s.session < time.Second {
		errs = append(errs, fmt.Errorf("fields.%s: %s: want at least 1s", fieldSession, s.session))
	}
	if s.clientID == "" {
		errs = append(errs, fmt.Errorf("fields.%s: must not be empty", fieldClientID))
	}
	s.dec = decoder{typ: cfg.String(fieldType), source: cfg.String(fieldSource)}
	if len(s.brokers) > 0 {
		s.dec.broker = s.brokers[0]
	}
	src := s.dec.source
	if src == "" {
		src = defaultSource(s.dec.broker, "topic")
	}
	if err := wrap.CheckSourceType(src, s.dec.typ, fieldSource, fieldType); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Connect implements connectors.Source: it creates the client and checks
// that a broker answers; the group is joined on the first poll.
func (s *Source) Connect(ctx context.Context) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.brokers...),
		kgo.ClientID(s.clientID),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topics...),
		kgo.ConsumeResetOffset(s.reset),
		kgo.AutoCommitMarks(),
		kgo.SessionTimeout(s.session),
		kgo.HeartbeatInterval(min(3*time.Second, s.session/3)), // Kafka's advice: at most a third of the session
		kgo.FetchMaxWait(time.Second),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	s.mu.Lock()
	s.cl, s.buf = cl, nil
	clear(s.nacked) // the new member starts at the committed offsets
	s.mu.Unlock()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("no broker of %v answers: %w", s.brokers, err)
	}
	return nil
}

// Close implements connectors.Source: it commits the marked offsets and
// leaves the group.
func (s *Source) Close(ctx context.Context) error {
	if s.cl == nil {
		return nil
	}
	err := s.commit(ctx)
	// Leave the group within ctx (its revoke commits the marks again), so a
	// broker that does not answer cannot hold the stop up; Close is then
	// immediate.
	if lerr := s.cl.LeaveGroupContext(ctx); lerr != nil && !errors.Is(lerr, context.Canceled) && !errors.Is(lerr, context.DeadlineExceeded) {
		s.log.Warn("leave consumer group", "group", s.group, "err", lerr)
	}
	s.cl.Close()
	s.mu.Lock()
	s.cl, s.buf = nil, nil
	s.mu.Unlock()
	return err
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.cl == nil {
		return nil, fmt.Errorf("kafka: read before connect: %w", connectors.ErrNotConnected)
	}
	s.rewind()
	for {
		if len(s.buf) > 0 {
			// Served even when ctx has ended: the record is already ours.
			r := s.buf[0]
			s.buf = s.buf[1:]
			return s.message(r), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.commit(ctx); err != nil {
			s.log.Warn("commit offsets failed; retrying before the next poll", "err", err)
		}
		if err := s.poll(ctx); err != nil {
			return nil, err
		}
	}
}

// poll takes the records the client has, waiting until some arrive or ctx
// ends.
func (s *Source) poll(ctx context.Context) error {
	fetches := s.cl.PollRecords(ctx, maxPollRecords)
	if fetches.IsClientClosed() {
		return fmt.Errorf("kafka client closed: %w", connectors.ErrNotConnected)
	}
	var fatal error
	for _, fe := range fetches.Errors() {
		var loss *kgo.ErrDataLoss
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
		case errors.As(fe.Err, &loss):
			s.log.Warn("records were lost before they could be consumed (deleted by retention or a truncated log)", "err", fe.Err)
		case kerr.IsRetriable(fe.Err):
			s.log.Debug("fetch failed; the client retries", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		default:
			fatal = fmt.Errorf("fetch %s[%d]: %v: %w", fe.Topic, fe.Partition, fe.Err, connectors.ErrNotConnected)
		}
	}
	fetches.EachRecord(func(r *kgo.Record) { s.buf = append(s.buf, r) })
	if len(s.buf) > 0 {
		return nil // the error, if lasting, comes again on the next poll
	}
	return fatal
}

// message hands out one record.
func (s *Source) message(r *kgo.Record) *connectors.Message {
	cl := s.cl
	tp := topicPartition{r.Topic, r.Partition}
	ev := s.dec.decode(r)
	return &connectors.Message{
		Event:    ev,
		Position: r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10),
		Ack: func(_ context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if cl != s.cl {
				return nil // from a previous connection: the record comes again
			}
			if err != nil {
				if cur, ok := s.nacked[tp]; !ok || r.Offset < cur {
					s.nacked[tp] = r.Offset
				}
				return nil
			}
			if _, ok := s.nacked[tp]; ok {
				return nil // an earlier record of the partition was refused: this one comes again too
			}
			cl.MarkCommitRecords(r)
			s.dirty = true
			return nil
		},
	}
}

// rewind makes refused records come again: their partitions restart at the
// lowest refused offset, and what was buffered beyond it is dropped.
func (s *Source) rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.nacked) == 0 {
		return
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for tp, off := range s.nacked {
		if set[tp.topic] == nil {
			set[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.topic][tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	kept := s.buf[:0]
	for _, r := range s.buf {
		if _, refused := s.nacked[topicPartition{r.Topic, r.Partition}]; !refused {
			kept = append(kept, r)
		}
	}
	s.buf = kept
	s.cl.SetOffsets(set) // a partition revoked meanwhile is skipped: its new owner starts at the commit
	clear(s.nacked)
}

// commit commits the marked offsets if any were marked since the last
// commit.
func (s *Source) commit(ctx context.Context) error {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cl.CommitMarkedOffsets(cctx); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("commit offsets of group %q: %w", s.group, err)
	}
	return nil
}

var _ connectors.Source = (*Source)(nil)
