package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/robfig/cron/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
)

// maxData bounds the static data: it is copied into every event.
const maxData = 64 << 10

// lateGrace is how late a tick may be read beyond catch_up and still fire.
const lateGrace = time.Second

// ticks computes a schedule's ticks.
type ticks interface {
	// next returns the first tick strictly after t (zero: none, ever).
	next(t time.Time) time.Time
}

// interval ticks at the multiples of d since the Unix epoch: every
// instance agrees on them whenever it started.
type interval struct{ d time.Duration }

func (i interval) next(t time.Time) time.Time {
	n := t.UnixNano()/int64(i.d) + 1
	return time.Unix(0, n*int64(i.d)).UTC()
}

// cronTicks reads a cron schedule in a time zone (a CRON_TZ prefix of the
// expression wins).
type cronTicks struct {
	s   cron.Schedule
	loc *time.Location
}

func (c cronTicks) next(t time.Time) time.Time { return c.s.Next(t.In(c.loc)) }

// parser reads 5 fields, 6 with seconds first, or a descriptor.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Source emits one event per tick. Read waits for the next tick; the
// runner publishes it at most once per tick across instances (Once).
type Source struct {
	name    string
	log     *slog.Logger
	once    connectors.OnceLog
	ticks   ticks
	catchUp time.Duration
	typ     string
	source  string
	subject string
	ctype   string
	data    []byte
	now     func() time.Time

	mu sync.Mutex
	// cursor is the last tick emitted (or where a first start begins):
	// the next tick is the first one after it.
	cursor time.Time
	// due is the tick Read waits for or returned last, for NextFire.
	due time.Time
	// pending is the tick Read returned whose Ack has not come yet: the
	// next to fire while it is being published.
	pending time.Time
	// counts are this instance's share of the ticks (TickCounts).
	counts connectors.TickCounts
}

// maxSkipCount bounds the steps of counting the ticks a resume skips on a
// cron schedule (an interval's are computed): beyond it the count is a
// lower bound.
const maxSkipCount = 100_000

// New builds a schedule source from its fields.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, log: env.Logger, once: env.Once, catchUp: cfg.Duration(fieldCatchUp),
		typ: cfg.String(fieldType), source: cfg.String(fieldSource), subject: cfg.String(fieldSubject),
		ctype: cfg.String(fieldContentType), data: []byte(cfg.String(fieldData)), now: time.Now,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.source == "" {
		s.source = "/switchyard/schedule/" + env.Name
	}
	var errs []error
	expr, every := strings.TrimSpace(cfg.String(fieldCron)), cfg.Duration(fieldInterval)
	tz := cfg.String(fieldTimezone)
	loc, err := time.LoadLocation(tz)
	switch {
	case tz == "Local" || tz == "":
		errs = append(errs, fmt.Errorf("fields.%s: %q: name a zone (UTC, Europe/Paris): every instance must read the schedule alike", fieldTimezone, tz))
	case err != nil:
		errs = append(errs, fmt.Errorf("fields.%s: %q: unknown time zone", fieldTimezone, tz))
	}
	switch {
	case expr == "" && every == 0:
		errs = append(errs, fmt.Errorf("fields.%s: give a cron expression or an interval", fieldCron))
	case expr != "" && every != 0:
		errs = append(errs, fmt.Errorf("fields.%s: give a cron expression or an interval, not both", fieldInterval))
	case every != 0:
		if every < time.Second || every%time.Second != 0 {
			errs = append(errs, fmt.Errorf("fields.%s: %s: want whole seconds, at least 1s", fieldInterval, every))
		}
		s.ticks = interval{every}
	default:
		if strings.Contains(expr, "@every") {
			errs = append(errs, fmt.Errorf("fields.%s: %q: @every counts from each instance's start; use the interval field, whose ticks every instance shares", fieldCron, expr))
			break
		}
		sched, perr := parser.Parse(expr)
		if perr != nil {
			errs = append(errs, fmt.Errorf("fields.%s: %q: %w", fieldCron, expr, perr))
			break
		}
		if loc == nil {
			loc = time.UTC
		}
		s.ticks = cronTicks{sched, loc}
		if s.ticks.next(time.Now()).IsZero() {
			errs = append(errs, fmt.Errorf("fields.%s: %q never fires", fieldCron, expr))
		}
	}
	if s.catchUp < 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %s: must not be negative", fieldCatchUp, s.catchUp))
	}
	if s.typ == "" {
		errs = append(errs, fmt.Errorf("fields.%s: must not be empty", fieldType))
	}
	if len(s.data) > 0 {
		mt, _, merr := mime.ParseMediaType(s.ctype)
		switch {
		case len(s.data) > maxData:
			errs = append(errs, fmt.Errorf("fields.%s: %d bytes: at most %d", fieldData, len(s.data), maxData))
		case merr != nil:
			errs = append(errs, fmt.Errorf("fields.%s: %q: %w", fieldContentType, s.ctype, merr))
		case (mt == "application/json" || strings.HasSuffix(mt, "+json")) && !json.Valid(s.data):
			errs = append(errs, fmt.Errorf("fields.%s: not valid JSON (set %s for other data)", fieldData, fieldContentType))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The event must be valid whatever the tick: check one now.
	if err := cloudevent.Validate(s.event(time.Unix(0, 0))); err != nil {
		return nil, fmt.Errorf("fields: the events would be invalid: %w", err)
	}
	return s, nil
}

// Connect resumes after the last tick published under the source's name
// (by any instance), or, on a first start, from now.
func (s *Source) Connect(ctx context.Context) error {
	var last time.Time
	if s.once != nil {
		seq, ok, err := s.once.LastOnce(ctx, s.name)
		if err != nil {
			return fmt.Errorf("read the last tick published: %w", err)
		}
		if ok {
			last = time.UnixMilli(seq)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last.After(s.cursor) {
		s.cursor = last
	}
	if s.cursor.IsZero() {
		s.cursor = s.now()
	}
	return nil
}

// Read waits for the next tick and returns its event. A tick older than
// catch_up (plus a second of grace) is skipped (logged) for the first one
// within it.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	s.mu.Lock()
	prev := s.cursor
	due := s.ticks.next(prev)
	now := s.now()
	// A second of grace: a tick read a little late (a slow publish of the
	// previous one) is not a missed one.
	if oldest := now.Add(-s.catchUp - lateGrace); !due.IsZero() && due.Before(oldest) {
		skipped := due
		due = s.ticks.next(oldest.Add(-time.Nanosecond))
		s.counts.Skipped += countTicks(s.ticks, skipped, due)
		s.log.Warn("schedule: missed ticks older than catch_up skipped", "first_skipped", skipped.UTC().Format(time.RFC3339), "resumes_at", due.UTC().Format(time.RFC3339), "catch_up", s.catchUp)
	}
	s.due = due
	s.mu.Unlock()
	if due.IsZero() {
		<-ctx.Done() // a schedule that never fires again
		return nil, ctx.Err()
	}
	if wait := due.Sub(s.now()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	s.mu.Lock()
	s.cursor = due
	if s.pending.IsZero() { // the earliest of a batch not yet acknowledged
		s.pending = due
	}
	s.mu.Unlock()
	once := &connectors.Once{Key: s.name, Seq: due.UnixMilli()}
	return &connectors.Message{
		Event:    s.event(due),
		Position: due.UTC().Format(time.RFC3339),
		Once:     once,
		Ack: func(_ context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pending.Equal(due) {
				s.pending = time.Time{}
			}
			switch {
			case err != nil: // not accepted: the tick is read again
				if prev.Before(s.cursor) {
					s.cursor = prev
				}
			case once.Published:
				s.counts.Fired++
				if s.now().Sub(due) >= connectors.LateAfter {
					s.counts.Late++
				}
			default:
				s.counts.Taken++
			}
			return nil
		},
	}, nil
}

// countTicks counts the ticks from first (a tick) up to before until.
func countTicks(t ticks, first, until time.Time) int64 {
	if !first.Before(until) {
		return 0
	}
	if i, ok := t.(interval); ok {
		return int64((until.Sub(first) + i.d - 1) / i.d)
	}
	n := int64(1)
	for at := t.next(first); !at.IsZero() && at.Before(until) && n < maxSkipCount; at = t.next(at) {
		n++
	}
	return n
}

// TickCounts returns this instance's share of the ticks so far.
func (s *Source) TickCounts() connectors.TickCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// event is the tick's event.
func (s *Source) event(tick time.Time) *pb.CloudEvent {
	ev := &pb.CloudEvent{
		Id: s.name + "@" + tick.UTC().Format(time.RFC3339), Source: s.source, SpecVersion: "1.0", Type: s.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			cloudevent.AttrTime: {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(tick)}},
		},
	}
	if s.subject != "" {
		cloudevent.SetAttribute(ev, cloudevent.AttrSubject, s.subject)
	}
	if len(s.data) > 0 {
		cloudevent.SetAttribute(ev, cloudevent.AttrDataContentType, s.ctype)
		cloudevent.SetData(ev, s.ctype, s.data)
	}
	return ev
}

// NextFire is the tick being published (read, not yet acknowledged), else
// the tick Read waits for (or the one after the last emitted). A tick whose
// publish keeps failing thus stays the next one, and shows as overdue.
func (s *Source) NextFire() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending.IsZero() {
		return s.pending
	}
	if !s.due.IsZero() && s.due.After(s.cursor) {
		return s.due
	}
	if s.cursor.IsZero() {
		return s.ticks.next(s.now())
	}
	return s.ticks.next(s.cursor)
}

// Close releases nothing: the source holds no connection.
func (s *Source) Close(context.Context) error { return nil }
