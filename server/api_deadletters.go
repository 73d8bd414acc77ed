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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/dlq"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
)

type deadLetterService struct {
	switchyardv1.UnimplementedDeadLetterServiceServer
	r *router.Router
}

// dataLoss answers a dead letter that does not decode as DATA_LOSS, any
// other error as the store's.
func dataLoss(err error) error {
	var ce *dlq.CorruptError
	if errors.As(err, &ce) {
		return status.Error(codes.DataLoss, err.Error())
	}
	return StatusFor(err)
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
	if req.GetPageSize() > dlq.MaxPageSize {
		return nil, invalidField("page_size", "at most %d (the dead-letter page size limit), got %d", dlq.MaxPageSize, req.GetPageSize())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = dlq.DefaultPageSize
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
	lreq := dlq.ListRequest{Triggers: names, After: dlq.Cursor{Trigger: tok.trigger, Next: tok.next}, Reason: req.GetReason(), Size: size}
	if req.GetSince() != nil {
		lreq.Since = req.GetSince().AsTime()
	}
	page, err := dlq.List(ctx, s.r.Store(), lreq)
	if err != nil {
		return nil, dataLoss(err)
	}
	out := &switchyardv1.ListDeadLettersResponse{DeadLetters: page.Letters}
	if page.Next.Trigger != "" {
		out.NextPageToken = pageToken{page.Next.Trigger, page.Next.Next}.encode()
	}
	return out, nil
}

func (s *deadLetterService) GetDeadLetter(ctx context.Context, req *switchyardv1.GetDeadLetterRequest) (*switchyardv1.GetDeadLetterResponse, error) {
	trig, id, err := splitID("id", req.GetId(), "")
	if err != nil {
		return nil, err
	}
	if !caller(ctx).CanSeeTrigger(trig) { // as for a dead letter that does not exist
		return nil, StatusFor(fmt.Errorf("dead letter %s/%s: %w", trig, id, dlq.ErrNotFound))
	}
	dl, err := dlq.Get(ctx, s.r.Store(), trig, id)
	if err != nil {
		return nil, dataLoss(err)
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
	rreq := dlq.ReplayRequest{From: from, To: to, All: req.GetAll(), Rate: req.GetRate(), DryRun: req.GetDryRun()}
	for i, id := range req.GetIds() {
		_, e, err := splitID(fmt.Sprintf("ids[%d]", i), id, from)
		if err != nil {
			return err
		}
		rreq.IDs = append(rreq.IDs, e)
	}
	var sendErr error
	rp := dlq.Replayer{Store: s.r.DeadLetters(), Wake: s.r.Wake}
	err := rp.Run(ctx, rreq, func(p dlq.Progress) error {
		sendErr = stream.Send(&switchyardv1.ReplayDeadLettersResponse{Total: p.Total, Replayed: p.Replayed, Missing: p.Missing, Done: p.Done})
		return sendErr
	})
	var we *dlq.WaitError
	switch {
	case err == nil:
		return nil
	case sendErr != nil && err == sendErr:
		return err
	case errors.As(err, &we):
		return status.FromContextError(we.Err).Err()
	}
	return StatusFor(err)
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
	preq := dlq.PurgeRequest{Trigger: trig, All: req.GetAll()}
	switch {
	case req.GetAll():
	case req.GetOlderThan() != nil:
		d := req.GetOlderThan().AsDuration()
		if d < 0 {
			return nil, invalidField("older_than", "must not be negative, got %v", d)
		}
		preq.Before = time.Now().Add(-d)
	default:
		preq.IDs = make([]string, 0, len(req.GetIds()))
		for i, id := range req.GetIds() {
			_, e, serr := splitID(fmt.Sprintf("ids[%d]", i), id, trig)
			if serr != nil {
				return nil, serr
			}
			preq.IDs = append(preq.IDs, e)
		}
	}
	n, err := dlq.Purge(ctx, s.r.Store(), preq)
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
	qs, err := dlq.Stats(ctx, s.r.Store(), names)
	if err != nil {
		return nil, StatusFor(err)
	}
	out := &switchyardv1.GetDeadLetterStatsResponse{}
	for _, q := range qs {
		pq := &switchyardv1.DeadLetterQueueStats{Trigger: q.Trigger, Entries: q.Entries, Added: q.Added, Evicted: q.Evicted}
		if !q.Oldest.IsZero() {
			pq.OldestTime = timestamppb.New(q.Oldest)
		}
		out.Queues = append(out.Queues, pq)
	}
	return out, nil
}
