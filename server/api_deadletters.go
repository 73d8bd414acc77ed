package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
	"github.com/switchyard-io/switchyard/router/trigger"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
	replayChunk     = 100
)

type deadLetterService struct {
	switchyardv1.UnimplementedDeadLetterServiceServer
	r *router.Router
}

// decodeEntry turns a stored entry into the API message.
func decodeEntry(trigger string, e store.DLQEntry) (*switchyardv1.DeadLetter, error) {
	dl := &switchyardv1.DeadLetter{}
	if err := proto.Unmarshal(e.Letter, dl); err != nil {
		return nil, fmt.Errorf("dead letter %s/%s is corrupt: %w", trigger, e.ID, err)
	}
	ev := &pb.CloudEvent{}
	if err := proto.Unmarshal(e.Event, ev); err != nil {
		return nil, fmt.Errorf("dead letter %s/%s: event is corrupt: %w", trigger, e.ID, err)
	}
	dl.Id = trigger + "/" + e.ID
	dl.Trigger = trigger
	dl.Event = ev
	if dl.DeadTime == nil {
		dl.DeadTime = timestamppb.New(store.IDTime(e.ID))
	}
	return dl, nil
}

// entryIDRE matches the id of a dead-letter queue entry: a Redis stream
// entry id, "<unix ms>-<sequence>".
var entryIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// splitID parses the dead letter id in the request field named field:
// "<trigger>/<entry>", or a bare "<entry>" when the request names the
// trigger (want != ""), in which case an id naming another trigger is
// refused. Both parts are checked before they reach the store.
func splitID(field, id, want string) (string, string, error) {
	t, e, ok := strings.Cut(id, "/")
	switch {
	case !ok && want == "":
		return "", "", invalidField(field, "dead letter id %q: want <trigger>/<entry>", id)
	case !ok:
		t, e = want, id
	case want != "" && t != want:
		return "", "", invalidField(field, "dead letter %q belongs to trigger %q, not %q", id, t, want)
	}
	if err := trigger.CheckName(t); err != nil {
		return "", "", invalidField(field, "dead letter id %q: trigger %v", id, err)
	}
	if !entryIDRE.MatchString(e) {
		return "", "", invalidField(field, "dead letter id %q: the entry must be <unix ms>-<sequence>, as dlq list prints it", id)
	}
	return t, e, nil
}

type pageToken struct{ trigger, next string }

func (p pageToken) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(p.trigger + "\n" + p.next))
}

// decodeToken reads a page_token; its parts are checked like the request's
// own fields, since a client can forge one.
func decodeToken(s string) (pageToken, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return pageToken{}, invalidField("page_token", "not a token returned by ListDeadLetters")
	}
	t, n, ok := strings.Cut(string(b), "\n")
	if !ok || !trigger.ValidName(t) || !entryIDRE.MatchString(n) {
		return pageToken{}, invalidField("page_token", "not a token returned by ListDeadLetters")
	}
	return pageToken{t, n}, nil
}

// triggers returns the trigger named only, or every trigger with dead
// letters; either way only those the caller may see.
func (s *deadLetterService) triggers(ctx context.Context, only string) ([]string, error) {
	if only != "" {
		if err := allowTriggers(ctx, auth.PermDeadLettersRead, only); err != nil {
			return nil, err
		}
		return []string{only}, nil
	}
	names, err := s.r.Store().DLQTriggers(ctx)
	if err != nil {
		return nil, StatusFor(err)
	}
	sort.Strings(names)
	return visibleTriggers(ctx, names), nil
}

func (s *deadLetterService) ListDeadLetters(ctx context.Context, req *switchyardv1.ListDeadLettersRequest) (*switchyardv1.ListDeadLettersResponse, error) {
	if req.GetTrigger() != "" {
		if err := checkTriggerName("trigger", req.GetTrigger()); err != nil {
			return nil, err
		}
	}
	if req.GetPageSize() < 0 {
		return nil, invalidField("page_size", "must not be negative, got %d", req.GetPageSize())
	}
	if req.GetPageSize() > maxPageSize {
		return nil, invalidField("page_size", "at most %d (the dead-letter page size limit), got %d", maxPageSize, req.GetPageSize())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	names, err := s.triggers(ctx, req.GetTrigger())
	if err != nil {
		return nil, err
	}
	var tok pageToken
	if req.GetPageToken() != "" {
		if tok, err = decodeToken(req.GetPageToken()); err != nil {
			return nil, err
		}
	}
	start := "-"
	if req.GetSince() != nil {
		start = fmt.Sprintf("%d-0", req.GetSince().AsTime().UnixMilli())
	}
	out := &switchyardv1.ListDeadLettersResponse{}
	for _, name := range names {
		if tok.trigger != "" && name < tok.trigger {
			continue
		}
		from := start
		if tok.trigger == name {
			from = tok.next
		}
		for {
			entries, err := s.r.Store().ListDLQ(ctx, name, from, size+1)
			if err != nil {
				return nil, StatusFor(err)
			}
			for i, e := range entries {
				if len(out.DeadLetters) == size {
					out.NextPageToken = pageToken{name, entries[i].ID}.encode()
					return out, nil
				}
				dl, err := decodeEntry(name, e)
				if err != nil {
					return nil, status.Error(codes.DataLoss, err.Error())
				}
				if req.GetReason() != 0 && dl.GetReason() != req.GetReason() {
					continue
				}
				out.DeadLetters = append(out.DeadLetters, dl)
			}
			if len(entries) < size+1 {
				break
			}
			from = store.NextID(entries[len(entries)-1].ID)
		}
	}
	return out, nil
}

func (s *deadLetterService) GetDeadLetter(ctx context.Context, req *switchyardv1.GetDeadLetterRequest) (*switchyardv1.GetDeadLetterResponse, error) {
	trig, id, err := splitID("id", req.GetId(), "")
	if err != nil {
		return nil, err
	}
	if !caller(ctx).CanSeeTrigger(trig) { // as for a dead letter that does not exist
		return nil, StatusFor(fmt.Errorf("dead letter %s/%s: %w", trig, id, store.ErrNotFound))
	}
	e, err := s.r.Store().GetDLQ(ctx, trig, id)
	if err != nil {
		return nil, StatusFor(err)
	}
	dl, err := decodeEntry(trig, e)
	if err != nil {
		return nil, status.Error(codes.DataLoss, err.Error())
	}
	return &switchyardv1.GetDeadLetterResponse{DeadLetter: dl}, nil
}

func (s *deadLetterService) ReplayDeadLetters(req *switchyardv1.ReplayDeadLettersRequest, stream grpc.ServerStreamingServer[switchyardv1.ReplayDeadLettersResponse]) error {
	ctx := stream.Context()
	if err := allowTriggers(ctx, auth.PermDeadLettersWrite, req.GetTrigger(), req.GetToTrigger()); err != nil {
		return err
	}
	from := req.GetTrigger()
	if err := checkTriggerName("trigger", from); err != nil {
		return err
	}
	if (len(req.GetIds()) == 0) == !req.GetAll() {
		return invalidFields("give either ids or all", "ids", "all")
	}
	if req.GetRate() < 0 || math.IsNaN(req.GetRate()) {
		return invalidField("rate", "must not be negative, got %v", req.GetRate())
	}
	to := req.GetToTrigger()
	if to == "" {
		to = from
	} else if err := checkTriggerName("to_trigger", to); err != nil {
		return err
	}
	if _, err := s.r.Store().GetTrigger(ctx, to); err != nil {
		return StatusFor(fmt.Errorf("replay target: %w", err))
	}
	// The work list: the given ids, or every entry present now.
	var ids []string
	if req.GetAll() {
		last, err := s.r.Store().LastDLQID(ctx, from)
		if err != nil {
			return StatusFor(err)
		}
		next := "-"
		for last != "" {
			entries, err := s.r.Store().ListDLQ(ctx, from, next, 1000)
			if err != nil {
				return StatusFor(err)
			}
			done := false
			for _, e := range entries {
				ids = append(ids, e.ID)
				if e.ID == last {
					done = true
					break
				}
			}
			if done || len(entries) < 1000 {
				break
			}
			next = store.NextID(entries[len(entries)-1].ID)
		}
	} else {
		for i, id := range req.GetIds() {
			_, e, err := splitID(fmt.Sprintf("ids[%d]", i), id, from)
			if err != nil {
				return err
			}
			ids = append(ids, e)
		}
	}
	prog := &switchyardv1.ReplayDeadLettersResponse{Total: int64(len(ids))}
	if req.GetDryRun() {
		for _, id := range ids {
			if _, err := s.r.Store().GetDLQ(ctx, from, id); errors.Is(err, store.ErrNotFound) {
				prog.Missing++
			} else if err != nil {
				return StatusFor(err)
			} else {
				prog.Replayed++
			}
		}
		prog.Done = true
		return stream.Send(prog)
	}
	var lim *rate.Limiter
	chunk := replayChunk
	if req.GetRate() > 0 {
		lim = rate.NewLimiter(rate.Limit(req.GetRate()), max(1, int(req.GetRate())))
		chunk = max(1, min(chunk, int(req.GetRate())))
	}
	lastSent := time.Time{}
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		if lim != nil {
			if err := lim.WaitN(ctx, n); err != nil {
				return status.FromContextError(err).Err()
			}
		}
		var replayed, missing int64
		var err error
		if to == from {
			replayed, missing, err = s.r.Store().Replay(ctx, from, batch, time.Now())
		} else {
			replayed, missing, err = s.r.Store().ReplayTo(ctx, from, to, batch, time.Now())
		}
		if err != nil {
			return StatusFor(err)
		}
		prog.Replayed += replayed
		prog.Missing += missing
		s.r.Wake(to)
		if time.Since(lastSent) > 200*time.Millisecond || len(ids) == 0 {
			lastSent = time.Now()
			prog.Done = len(ids) == 0
			if err := stream.Send(prog); err != nil {
				return err
			}
		}
	}
	if !prog.Done {
		prog.Done = true
		return stream.Send(prog)
	}
	return nil
}

func (s *deadLetterService) PurgeDeadLetters(ctx context.Context, req *switchyardv1.PurgeDeadLettersRequest) (*switchyardv1.PurgeDeadLettersResponse, error) {
	if err := allowTriggers(ctx, auth.PermDeadLettersWrite, req.GetTrigger()); err != nil {
		return nil, err
	}
	trig := req.GetTrigger()
	if err := checkTriggerName("trigger", trig); err != nil {
		return nil, err
	}
	modes := 0
	if len(req.GetIds()) > 0 {
		modes++
	}
	if req.GetOlderThan() != nil {
		modes++
	}
	if req.GetAll() {
		modes++
	}
	if modes != 1 {
		return nil, invalidFields("give exactly one of ids, older_than and all", "ids", "older_than", "all")
	}
	var n int64
	var err error
	switch {
	case req.GetAll():
		n, err = s.r.Store().PurgeDLQAll(ctx, trig)
	case req.GetOlderThan() != nil:
		d := req.GetOlderThan().AsDuration()
		if d < 0 {
			return nil, invalidField("older_than", "must not be negative, got %v", d)
		}
		n, err = s.r.Store().PurgeDLQBefore(ctx, trig, time.Now().Add(-d))
	default:
		ids := make([]string, 0, len(req.GetIds()))
		for i, id := range req.GetIds() {
			_, e, serr := splitID(fmt.Sprintf("ids[%d]", i), id, trig)
			if serr != nil {
				return nil, serr
			}
			ids = append(ids, e)
		}
		n, err = s.r.Store().PurgeDLQ(ctx, trig, ids)
	}
	if err != nil {
		return nil, StatusFor(err)
	}
	noteDetail(ctx, "purged %d", n)
	return &switchyardv1.PurgeDeadLettersResponse{Purged: n}, nil
}

func (s *deadLetterService) GetDeadLetterStats(ctx context.Context, _ *switchyardv1.GetDeadLetterStatsRequest) (*switchyardv1.GetDeadLetterStatsResponse, error) {
	names, err := s.triggers(ctx, "")
	if err != nil {
		return nil, err
	}
	// Triggers without dead letters yet still report their counters.
	ts, _, err := s.r.Store().ListTriggers(ctx)
	if err != nil {
		return nil, StatusFor(err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, t := range ts {
		if !seen[t.GetName()] {
			names = append(names, t.GetName())
		}
	}
	sort.Strings(names)
	names = visibleTriggers(ctx, names)
	out := &switchyardv1.GetDeadLetterStatsResponse{}
	for _, n := range names {
		qs, err := s.r.Store().Stats(ctx, n)
		if err != nil {
			return nil, StatusFor(err)
		}
		q := &switchyardv1.DeadLetterQueueStats{Trigger: n, Entries: qs.DeadLetters, Added: parseInt(qs.Counters["dead"]), Evicted: parseInt(qs.Counters["dlq_evicted"])}
		if entries, err := s.r.Store().ListDLQ(ctx, n, "-", 1); err == nil && len(entries) == 1 {
			q.OldestTime = timestamppb.New(store.IDTime(entries[0].ID))
		}
		out.Queues = append(out.Queues, q)
	}
	return out, nil
}
