package redisstreams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Source consumes one stream through a consumer group. Read and Ack may be
// called from different goroutines; Read is called from one at a time.
type Source struct {
	log                     *slog.Logger
	opt                     *redis.Options
	stream, group, consumer string
	start                   string
	block, claimIdle        time.Duration
	count                   int
	dec                     decoder

	// Owned by the Read goroutine (and Connect/Close, which the runner
	// never calls concurrently with Read).
	c           *redis.Client
	buf         []redis.XMessage // read, not yet handed out
	pel         string           // "" reads new entries; else re-reads own pending entries after this id
	claimCursor string           // XAUTOCLAIM cursor
	nextClaim   time.Time

	mu       sync.Mutex
	inflight map[string]bool // handed out, not yet acknowledged
	acked    []string        // acknowledged, XACK not yet sent
	rewind   bool            // an entry was refused: re-read the pending entries
}

// New builds a redis_streams source.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	opt, err := redis.ParseURL(cfg.String(fieldURL))
	if err != nil {
		return nil, fmt.Errorf("fields.%s: %w", fieldURL, err)
	}
	opt.MaxRetries = -1 // a failed command makes the runner reconnect, which re-reads what is pending
	s := &Source{
		log: env.Logger, opt: opt,
		stream: cfg.String(fieldStream), group: cfg.String(fieldGroup), consumer: cfg.String(fieldConsumer),
		start: cfg.String(fieldStart), block: cfg.Duration(fieldBlock), claimIdle: cfg.Duration(fieldClaimIdle),
		count: cfg.Int(fieldCount), inflight: map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	var errs []error
	if s.stream == "" || strings.ContainsFunc(s.stream, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want a non-empty key without control characters", fieldStream, s.stream))
	}
	if s.group == "" {
		s.group = "switchyard-" + env.Name
	}
	if s.consumer == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "switchyard"
		}
		s.consumer = h
	}
	if s.start != "0" && s.start != "$" {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want 0 (the whole stream) or $ (new entries)", fieldStart, s.start))
	}
	if s.block < time.Millisecond {
		errs = append(errs, fmt.Errorf("fields.%s: %s: want at least 1ms", fieldBlock, s.block))
	}
	if s.count <= 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %d: want a positive count", fieldCount, s.count))
	}
	if s.claimIdle < 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %s: want 0s (off) or a positive duration", fieldClaimIdle, s.claimIdle))
	}
	src := cfg.String(fieldSource)
	if src == "" {
		src = (&url.URL{Scheme: "redis", Host: opt.Addr, Path: "/" + s.stream}).String()
	}
	s.dec = decoder{stream: s.stream, typ: cfg.String(fieldType), source: src,
		dataField: cfg.String(fieldDataField), contentType: cfg.String(fieldContentType), subjectField: cfg.String(fieldSubjectField)}
	if err := wrap.CheckSourceType(src, s.dec.typ, fieldSource, fieldType); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Connect implements connectors.Source: it creates the group (and the
// stream) if missing, sends acknowledgements left over from the previous
// connection and starts by re-reading this consumer's pending entries.
func (s *Source) Connect(ctx context.Context) error {
	if s.c == nil {
		s.c = redis.NewClient(s.opt)
	}
	err := s.c.XGroupCreateMkStream(ctx, s.stream, s.group, s.start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %q on stream %q: %w", s.group, s.stream, err)
	}
	if err := s.flushAcks(ctx); err != nil {
		return err
	}
	s.buf, s.pel, s.claimCursor, s.nextClaim = nil, "0", "0-0", time.Time{}
	return nil
}

// Close implements connectors.Source: it sends pending acknowledgements and
// closes the connection. Entries read but not handed out stay pending and
// are re-read by the next Connect.
func (s *Source) Close(ctx context.Context) error {
	if s.c == nil {
		return nil
	}
	err := s.flushAcks(ctx)
	s.buf = nil
	if cerr := s.c.Close(); cerr != nil && err == nil {
		err = cerr
	}
	s.c = nil
	return err
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.c == nil {
		return nil, fmt.Errorf("redis_streams: read before connect: %w", connectors.ErrNotConnected)
	}
	s.mu.Lock()
	if s.rewind {
		// Everything handed out before the refusal has been answered (acks
		// come in order, the runner reads on only after answering a batch):
		// start again from the oldest pending entry.
		s.rewind, s.buf, s.pel = false, nil, "0"
	}
	s.mu.Unlock()
	for {
		if len(s.buf) > 0 {
			// Served even when ctx has ended: the entry is already ours.
			return s.next(), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.flushAcks(ctx); err != nil {
			return nil, err
		}
		if err := s.fetch(ctx); err != nil {
			return nil, err
		}
	}
}

// next hands out the first buffered entry.
func (s *Source) next() *connectors.Message {
	xm := s.buf[0]
	s.buf = s.buf[1:]
	id := xm.ID
	s.mu.Lock()
	s.inflight[id] = true
	s.mu.Unlock()
	return &connectors.Message{
		Event:    s.dec.decode(id, xm.Values),
		Position: id,
		Ack: func(_ context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.inflight, id)
			if err != nil {
				s.rewind = true
				return nil
			}
			s.acked = append(s.acked, id)
			return nil
		},
	}
}

// flushAcks sends the acknowledgements collected since the last call in one
// XACK. On failure they are kept for the next attempt (the next Connect at
// the latest), so no acknowledged entry is read again from the pending list.
func (s *Source) flushAcks(ctx context.Context) error {
	s.mu.Lock()
	ids := s.acked
	s.acked = nil
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if err := s.c.XAck(context.WithoutCancel(ctx), s.stream, s.group, ids...).Err(); err != nil {
		s.mu.Lock()
		s.acked = append(ids, s.acked...)
		s.mu.Unlock()
		return fmt.Errorf("XACK %d entries: %v: %w", len(ids), err, connectors.ErrNotConnected)
	}
	return nil
}

// fetch fills buf: first this consumer's own pending entries, then entries
// idle at dead consumers, then new entries (blocking up to block, or less
// when ctx has an earlier deadline). It may return with buf still empty.
func (s *Source) fetch(ctx context.Context) error {
	// Commands get a context that is never canceled: go-redis cannot
	// interrupt a blocking read anyway, and what a read returns must be kept.
	cctx := context.WithoutCancel(ctx)
	switch {
	case s.pel != "":
		res, err := s.c.XReadGroup(cctx, &redis.XReadGroupArgs{Group: s.group, Consumer: s.consumer,
			Streams: []string{s.stream, s.pel}, Count: int64(s.count), Block: -1}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return s.readErr("XREADGROUP (pending)", err)
		}
		var msgs []redis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		if len(msgs) == 0 {
			s.pel = "" // caught up: new entries from now on
			return nil
		}
		s.pel = msgs[len(msgs)-1].ID
		return s.keep(cctx, msgs)
	case s.claimIdle > 0 && !time.Now().Before(s.nextClaim):
		msgs, cursor, err := s.c.XAutoClaim(cctx, &redis.XAutoClaimArgs{Stream: s.stream, Group: s.group, Consumer: s.consumer,
			MinIdle: s.claimIdle, Start: s.claimCursor, Count: int64(s.count)}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return s.readErr("XAUTOCLAIM", err)
		}
		s.claimCursor = cursor
		if cursor == "0-0" || cursor == "" { // a full pass: wait before the next one
			s.claimCursor, s.nextClaim = "0-0", time.Now().Add(max(s.claimIdle/4, time.Second))
		}
		if len(msgs) > 0 {
			s.log.Info("claimed entries idle at other consumers", "count", len(msgs), "first", msgs[0].ID)
		}
		return s.keep(cctx, msgs)
	}
	block := s.block
	if dl, ok := ctx.Deadline(); ok {
		block = min(block, time.Until(dl))
	}
	if block < time.Millisecond {
		block = -1 // no BLOCK: return at once (BLOCK 0 would wait forever)
	}
	if s.claimIdle > 0 {
		block = min(block, max(time.Until(s.nextClaim), time.Millisecond))
	}
	res, err := s.c.XReadGroup(cctx, &redis.XReadGroupArgs{Group: s.group, Consumer: s.consumer,
		Streams: []string{s.stream, ">"}, Count: int64(s.count), Block: block}).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return s.readErr("XREADGROUP", err)
	}
	if len(res) > 0 {
		s.buf = append(s.buf, res[0].Messages...)
	}
	return nil
}

// keep buffers pending or claimed entries, skipping those already handed
// out (still in flight in the runner) and acknowledging deleted ones, which
// can never be delivered.
func (s *Source) keep(ctx context.Context, msgs []redis.XMessage) error {
	var gone []string
	s.mu.Lock()
	for _, m := range msgs {
		switch {
		case s.inflight[m.ID]:
		case len(m.Values) == 0:
			gone = append(gone, m.ID)
		default:
			s.buf = append(s.buf, m)
		}
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		s.log.Warn("pending entries were deleted from the stream before they were delivered; acknowledging them", "count", len(gone), "first", gone[0])
		if err := s.c.XAck(ctx, s.stream, s.group, gone...).Err(); err != nil {
			return s.readErr("XACK", err)
		}
	}
	return nil
}

// readErr classifies a failed command: the runner reconnects, which also
// recreates a group deleted behind our back (NOGROUP).
func (s *Source) readErr(cmd string, err error) error {
	return fmt.Errorf("%s on stream %q, group %q: %v: %w", cmd, s.stream, s.group, err, connectors.ErrNotConnected)
}

var _ connectors.Source = (*Source)(nil)
