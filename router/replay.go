package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/dlq"
	"github.com/switchyard-io/switchyard/internal/panics"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/store"
)

// A replay is a job in the store (store.ReplayJob), run by whichever
// instance holds its lease. Every instance that archives looks for running
// jobs whose lease is free once a second (and at once when it starts one)
// and takes at most maxLocalReplays of them. A job reads the archive in
// batches from its checkpoint, selects the events (the job's CESQL filter,
// then its trigger's filter and scope, or the current index limited to the
// triggers the job's creator may see), appends them to the ingest log
// routed to those triggers (so they are queued with every guarantee a
// publish has, admission by max_queue included), and only then moves the
// checkpoint, renewing its lease in the same script. A killed instance's
// job is taken over when its lease runs out and goes on from the
// checkpoint: the batch it had appended but not checkpointed is sent again
// (at-least-once), nothing is skipped. A cancelled job, or one whose lease
// another instance took, stops at its next checkpoint.

const (
	// replayLease is how long a job's lease lasts without a checkpoint.
	replayLease = 5 * time.Second
	// maxLocalReplays bounds the jobs one instance runs at once.
	maxLocalReplays = 4
	// keepReplays bounds the jobs the store lists; older finished ones go.
	keepReplays = 100
	// maxReplayBatch bounds the archived events one step reads.
	maxReplayBatch = 200
)

// replays runs this instance's share of the replay jobs.
type replays struct {
	r     *Router
	owner string
	kick  chan struct{}

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup

	// scanned and queued count what this instance's jobs did, once
	// checkpointed (a batch sent again after a takeover counts again).
	scanned, queued prometheus.Counter
}

func newReplays(r *Router) *replays {
	return &replays{r: r, owner: r.cfg.InstanceID + "/" + r.idNonce, kick: make(chan struct{}, 1), running: map[string]bool{},
		scanned: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_replay_events_scanned_total",
			Help: "Archived events this instance's replay jobs read (dry runs included)."}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_replay_deliveries_total",
			Help: "Deliveries this instance's replay jobs queued (an event sent to two triggers counts twice; dry runs queue none)."}),
	}
}

// loop takes free jobs once a second, or when kicked, until ctx ends; then
// waits for the jobs it runs (they stop with ctx, their leases left to
// run out).
func (p *replays) loop(ctx context.Context) {
	defer p.wg.Wait()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		p.takeFree(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

func (p *replays) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *replays) takeFree(ctx context.Context) {
	now := time.Now()
	ids, err := p.r.store.RunningReplays(ctx, now)
	if err != nil {
		if ctx.Err() == nil && p.r.logLimit.Allow("replay\x00list", now) {
			p.r.log.Warn("replay: list jobs", "err", err)
		}
		return
	}
	for _, id := range ids {
		p.mu.Lock()
		busy, n := p.running[id], len(p.running)
		p.mu.Unlock()
		if busy || n >= maxLocalReplays {
			continue
		}
		ok, err := p.r.store.LeaseReplay(ctx, id, p.owner, time.Now(), replayLease)
		if err != nil || !ok {
			continue
		}
		p.mu.Lock()
		p.running[id] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { p.mu.Lock(); delete(p.running, id); p.mu.Unlock() }()
			panics.Run(p.r.log, "router.replay", func() { p.run(ctx, id) })
			if ctx.Err() != nil {
				// Stopping: another instance may go on at once rather
				// than when the lease runs out.
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = p.r.store.ReleaseReplay(rctx, id, p.owner)
				cancel()
			}
		}()
	}
}

// run runs one job whose lease this instance holds, until it ends, is
// cancelled or taken over, or ctx ends.
func (p *replays) run(ctx context.Context, id string) {
	job, err := p.r.store.GetReplay(ctx, id)
	if err != nil {
		return
	}
	spec := &switchyardv1.ReplaySpec{}
	if err := proto.Unmarshal(job.Spec, spec); err != nil {
		p.finish(ctx, id, store.ReplayFailed, "unreadable job: "+err.Error())
		return
	}
	var sel filter.Filter
	if spec.GetFilter() != "" {
		if sel, err = filter.Compile(filter.Spec{CESQL: spec.GetFilter()}); err != nil {
			p.finish(ctx, id, store.ReplayFailed, "filter: "+err.Error())
			return
		}
	}
	p.r.log.Info("replay: running", "replay", id, "from", spec.GetFrom().AsTime(), "to", spec.GetTo().AsTime(),
		"trigger", spec.GetTrigger(), "dry_run", spec.GetDryRun(), "resumed_after", job.Cursor)
	rt := int(spec.GetRate())
	if rt <= 0 {
		rt = DefaultReplayRate
	}
	batch := min(max(rt/5, 1), maxReplayBatch)
	lim := rate.NewLimiter(rate.Limit(rt), batch)
	start := archiveID(spec.GetFrom().AsTime(), 0)
	if job.Cursor != "" {
		start = dlq.NextID(job.Cursor)
	}
	end, ok := store.PrevID(archiveID(spec.GetTo().AsTime(), 0))
	if !ok {
		p.finish(ctx, id, store.ReplaySucceeded, "")
		return
	}
	in := filter.NewInput(nil)
	for ctx.Err() == nil {
		entries, err := p.r.store.ArchiveRange(ctx, start, end, int64(batch))
		if err != nil {
			if !p.pause(ctx, id, "read the archive", err) {
				return
			}
			continue
		}
		if len(entries) == 0 {
			p.finish(ctx, id, store.ReplaySucceeded, "")
			p.r.log.Info("replay: done", "replay", id)
			return
		}
		step, fail := p.r.selectReplay(id, spec, sel, in, entries)
		if fail != "" {
			p.finish(ctx, id, store.ReplayFailed, fail)
			return
		}
		if !spec.GetDryRun() && len(step.recs) > 0 {
			if err := lim.WaitN(ctx, len(step.recs)); err != nil {
				return
			}
			if !p.send(ctx, id, step.recs) {
				return
			}
		}
		last := entries[len(entries)-1].ID
		err = p.r.store.CheckpointReplay(ctx, id, p.owner, store.ReplayProgress{
			Cursor: last, Scanned: int64(len(entries)), Matched: step.matched, Sent: step.sent,
		}, time.Now(), replayLease)
		var lost *store.ErrLeaseLost
		if errors.As(err, &lost) {
			p.r.log.Info("replay: stopped here", "replay", id, "reason", lost.Error())
			return
		}
		if err != nil {
			// The batch is sent but not checkpointed: the job goes on
			// from the previous checkpoint (this batch again) once the
			// store answers, here or on the instance that takes it.
			p.r.log.Warn("replay: checkpoint", "replay", id, "err", err)
			return
		}
		p.scanned.Add(float64(len(entries)))
		if !spec.GetDryRun() {
			p.queued.Add(float64(step.sent))
		}
		start = dlq.NextID(last)
	}
}

// replayStep is what one batch of archived events sends.
type replayStep struct {
	recs          []store.LogRecord
	matched, sent int64
}

// selectReplay picks the events of entries the job sends and where; fail
// says why the job cannot go on (its trigger is gone).
func (r *Router) selectReplay(id string, spec *switchyardv1.ReplaySpec, sel filter.Filter, in *filter.Input, entries []store.ArchiveEntry) (replayStep, string) {
	var st replayStep
	snap := r.snap.Load()
	for _, e := range entries {
		ev := &pb.CloudEvent{}
		if proto.Unmarshal(e.Event, ev) != nil {
			continue
		}
		if ev.Attributes == nil {
			ev.Attributes = map[string]*pb.CloudEventAttributeValue{}
		}
		ev.Attributes[ReplayExtension] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: id}}
		in.Reset(ev)
		in.SetCELBudget(r.cfg.FilterCostPerEvent)
		if sel != nil && !sel.Match(in) {
			continue
		}
		var targets []string
		if name := spec.GetTrigger(); name != "" {
			t := snap.triggers[name]
			if t == nil {
				return st, fmt.Sprintf("trigger %q does not exist (any more)", name)
			}
			if t.Filter.Match(in) {
				targets = []string{name}
			}
		} else {
			for _, name := range snap.index.Match(in, nil) {
				if inScope(spec.GetScopeTriggers(), name) {
					targets = append(targets, name)
				}
			}
		}
		if len(targets) == 0 {
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			continue
		}
		st.matched++
		st.sent += int64(len(targets))
		st.recs = append(st.recs, store.LogRecord{Event: b, Triggers: targets})
	}
	in.Reset(nil)
	return st, ""
}

// inScope reports whether name starts with one of prefixes (none: any).
func inScope(prefixes []string, name string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// send appends recs to the ingest log once admission lets them in (a
// trigger at max_queue makes the job wait, its lease renewed), retrying a
// failed write; false when the job must stop.
func (p *replays) send(ctx context.Context, id string, recs []store.LogRecord) bool {
	matched := make([][]string, len(recs))
	for i, rec := range recs {
		matched[i] = rec.Triggers
	}
	for {
		err := p.r.admit(p.r.snap.Load(), matched)
		var pe *PushbackError
		if errors.As(err, &pe) {
			if !p.wait(ctx, id, min(max(pe.RetryAfter, 50*time.Millisecond), time.Second)) {
				return false
			}
			continue
		}
		if err = p.r.store.AppendLog(ctx, recs); err == nil {
			break
		}
		if !p.pause(ctx, id, "queue", err) {
			return false
		}
	}
	p.r.backlog.accepted(matched)
	return true
}

// pause logs a failed step and waits a second before the next try, the
// lease renewed; false when the job must stop.
func (p *replays) pause(ctx context.Context, id, what string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if p.r.logLimit.Allow("replay\x00"+id+"\x00"+what, time.Now()) {
		p.r.log.Warn("replay: "+what, "replay", id, "err", err)
	}
	return p.wait(ctx, id, time.Second)
}

// wait waits d, then renews the job's lease; false when ctx ended or the
// job is no longer this instance's to run.
func (p *replays) wait(ctx context.Context, id string, d time.Duration) bool {
	if !backoffSleep(ctx, d) {
		return false
	}
	err := p.r.store.CheckpointReplay(ctx, id, p.owner, store.ReplayProgress{}, time.Now(), replayLease)
	var lost *store.ErrLeaseLost
	return !errors.As(err, &lost)
}

func (p *replays) finish(ctx context.Context, id, state, msg string) {
	err := p.r.store.CheckpointReplay(ctx, id, p.owner, store.ReplayProgress{Final: state, Error: msg}, time.Now(), replayLease)
	if err != nil && ctx.Err() == nil {
		p.r.log.Warn("replay: finish", "replay", id, "state", state, "err", err)
	}
}

// archiveID is the stream id of time t with sequence seq.
func archiveID(t time.Time, seq uint64) string {
	return strconv.FormatInt(t.UnixMilli(), 10) + "-" + strconv.FormatUint(seq, 10)
}

// ReplayError is a replay request the router refuses: Field names the
// spec's field ("from", "trigger", "filter", "rate").
type ReplayError struct {
	Field, Msg string
}

func (e *ReplayError) Error() string { return e.Field + ": " + e.Msg }

// StartReplay stores a new replay job for spec and has the instances run
// it. spec is checked (*ReplayError names the field; a trigger that does
// not exist is store.ErrNotFound), its to set to now
// when unset or later, and it is stored as given otherwise (the caller
// fills scope_triggers and created_by). ErrArchiveOff when off.
func (r *Router) StartReplay(ctx context.Context, spec *switchyardv1.ReplaySpec) (*switchyardv1.Replay, error) {
	if r.replays == nil {
		return nil, ErrArchiveOff
	}
	spec = proto.Clone(spec).(*switchyardv1.ReplaySpec)
	now := time.Now()
	info, err := r.store.ArchiveInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	open := spec.GetTo() == nil || spec.GetTo().AsTime().After(now)
	if open {
		// Up to now, and past every event archived so far: the window
		// ends after the newest entry even when Redis's clock, which
		// names the entries, runs ahead of this instance's.
		end := now.Add(time.Millisecond)
		if n := info.Newest.Add(time.Millisecond); n.After(end) {
			end = n
		}
		spec.To = timestamppb.New(end)
	}
	if err := r.checkReplay(spec); err != nil {
		return nil, err
	}
	// The window's size, for progress, when it is cheap to know: a
	// window from the oldest event to now is the whole archive.
	var total int64
	if open && !info.Oldest.Before(spec.GetFrom().AsTime()) {
		total = info.Entries
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	id := "r" + hex.EncodeToString(raw[:])
	b, err := proto.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := r.store.CreateReplay(ctx, id, b, total, now, keepReplays); err != nil {
		if store.IsFull(err) {
			return nil, fmt.Errorf("%w: %w", ErrStoreFull, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.replays.poke()
	return r.GetReplay(ctx, id)
}

func (r *Router) checkReplay(spec *switchyardv1.ReplaySpec) error {
	switch {
	case spec.GetFrom() == nil:
		return &ReplayError{"from", "the start of the time window is required"}
	case spec.GetFrom().CheckValid() != nil || spec.GetTo().CheckValid() != nil:
		return &ReplayError{"from", "not a valid time"}
	case !spec.GetFrom().AsTime().Before(spec.GetTo().AsTime()):
		return &ReplayError{"from", fmt.Sprintf("%s is not before the end of the window, %s", spec.GetFrom().AsTime().Format(time.RFC3339Nano), spec.GetTo().AsTime().Format(time.RFC3339Nano))}
	case spec.GetFrom().AsTime().UnixMilli() < 0:
		return &ReplayError{"from", "before 1970"}
	case spec.GetRate() < 0 || spec.GetRate() > MaxReplayRate:
		return &ReplayError{"rate", fmt.Sprintf("want 1 to %d events per second (0: %d), got %d", MaxReplayRate, DefaultReplayRate, spec.GetRate())}
	case spec.GetTrigger() == "" && !spec.GetAllMatching():
		return &ReplayError{"trigger", "say where the events go: a trigger, or all_matching"}
	}
	if name := spec.GetTrigger(); name != "" && r.snap.Load().triggers[name] == nil {
		return fmt.Errorf("trigger %q: %w", name, store.ErrNotFound)
	}
	if f := spec.GetFilter(); f != "" {
		if _, err := filter.Compile(filter.Spec{CESQL: f}); err != nil {
			return &ReplayError{"filter", strings.TrimPrefix(err.Error(), "filter.cesql: ")}
		}
	}
	return nil
}

// GetReplay returns a job with its progress; an error wrapping
// store.ErrNotFound when there is none.
func (r *Router) GetReplay(ctx context.Context, id string) (*switchyardv1.Replay, error) {
	job, err := r.store.GetReplay(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return replayProto(job), nil
}

// ListReplays returns the jobs the store keeps, newest first.
func (r *Router) ListReplays(ctx context.Context) ([]*switchyardv1.Replay, error) {
	jobs, err := r.store.ListReplays(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]*switchyardv1.Replay, len(jobs))
	for i, j := range jobs {
		out[i] = replayProto(j)
	}
	return out, nil
}

// CancelReplay stops a running job (what it queued stays queued) and
// returns it; a finished job is returned unchanged.
func (r *Router) CancelReplay(ctx context.Context, id string) (*switchyardv1.Replay, error) {
	if _, err := r.store.CancelReplay(ctx, id, time.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return r.GetReplay(ctx, id)
}

// replayProto renders a stored job for the API, with its progress through
// its window.
func replayProto(j store.ReplayJob) *switchyardv1.Replay {
	spec := &switchyardv1.ReplaySpec{}
	_ = proto.Unmarshal(j.Spec, spec)
	out := &switchyardv1.Replay{
		Id: j.ID, Spec: spec, State: j.State, Scanned: j.Scanned, Matched: j.Matched, Sent: j.Sent, Error: j.Error, Total: j.Total,
	}
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	out.CreateTime, out.UpdateTime, out.FinishTime = ts(j.Created), ts(j.Updated), ts(j.Finished)
	from, to := spec.GetFrom().AsTime(), spec.GetTo().AsTime()
	if j.Cursor != "" {
		pos := store.IDTime(j.Cursor)
		out.Position = timestamppb.New(pos)
		if span := to.Sub(from); j.Total == 0 && span > 0 {
			out.Progress = min(1, max(0, float64(pos.Sub(from))/float64(span)))
		}
	}
	if j.Total > 0 {
		out.Progress = min(1, float64(j.Scanned)/float64(j.Total))
	}
	if j.State == store.ReplaySucceeded {
		out.Progress = 1
	}
	return out
}
