package server

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/auth"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
)

// Bounds of the archive API.
const (
	// maxArchivedEvents bounds one ListArchivedEvents.
	maxArchivedEvents = 1000
	// archiveScanLimit bounds the archived events one ListArchivedEvents
	// reads looking for those in the caller's event scope.
	archiveScanLimit = 10_000
)

// replayIDRE is what a replay job's id looks like (router.StartReplay).
var replayIDRE = regexp.MustCompile(`^r[0-9a-f]{16}$`)

// archiveService serves ArchiveService over the router's archive. The
// method permissions are in authgrpc.DefaultPolicy; what each call reaches
// is checked here: the trigger a replay goes to (AllowTrigger, NOT_FOUND
// outside the scope), the triggers an all-matching replay may reach (the
// caller's trigger scope, stored with the job), the jobs a caller sees
// (replayVisible) and the archived events it may read (its event scope:
// archivedEventsVisible), both decided in authz.go.
type archiveService struct {
	switchyardv1.UnimplementedArchiveServiceServer
	r *router.Router
}

func (s *archiveService) GetArchiveStats(ctx context.Context, _ *switchyardv1.GetArchiveStatsRequest) (*switchyardv1.GetArchiveStatsResponse, error) {
	cfg := s.r.ArchiveConfig()
	st := &switchyardv1.ArchiveStats{Enabled: cfg.Enabled(), MaxBytes: cfg.MaxBytes, MemoryBytes: -1}
	if cfg.Retention > 0 {
		st.Retention = durationpb.New(cfg.Retention)
	}
	if !st.Enabled {
		return &switchyardv1.GetArchiveStatsResponse{Stats: st}, nil
	}
	info, err := s.r.ArchiveInfo(ctx)
	if err != nil {
		return nil, archiveStatus(err)
	}
	st.Events, st.MemoryBytes = info.Entries, info.Bytes
	if !info.Oldest.IsZero() {
		st.OldestTime, st.NewestTime = timestamppb.New(info.Oldest), timestamppb.New(info.Newest)
	}
	jobs, err := s.r.ListReplays(ctx)
	if err != nil {
		return nil, archiveStatus(err)
	}
	for _, j := range jobs {
		if j.GetState() == store.ReplayRunning {
			st.RunningReplays++
		}
	}
	return &switchyardv1.GetArchiveStatsResponse{Stats: st}, nil
}

func (s *archiveService) ListArchivedEvents(ctx context.Context, req *switchyardv1.ListArchivedEventsRequest) (*switchyardv1.ListArchivedEventsResponse, error) {
	if n := req.GetLimit(); n < 1 || n > maxArchivedEvents {
		return nil, invalidField("limit", "want 1 to %d events, got %d", maxArchivedEvents, n)
	}
	keep, err := archivedEventsVisible(ctx)
	if err != nil {
		return nil, err
	}
	evs, err := s.r.RecentArchived(ctx, int(req.GetLimit()), archiveScanLimit, keep)
	if err != nil {
		return nil, archiveStatus(err)
	}
	out := &switchyardv1.ListArchivedEventsResponse{Events: make([]*switchyardv1.ArchivedEvent, len(evs))}
	for i, e := range evs {
		out.Events[i] = &switchyardv1.ArchivedEvent{Id: e.ID, AcceptTime: timestamppb.New(e.Time), Event: e.Event}
	}
	return out, nil
}

func (s *archiveService) StartReplay(ctx context.Context, req *switchyardv1.StartReplayRequest) (*switchyardv1.StartReplayResponse, error) {
	spec := req.GetSpec()
	if spec == nil {
		return nil, invalidField("spec", "the replay's spec is required")
	}
	id := caller(ctx)
	if id == nil {
		return nil, withDetails(codes.PermissionDenied, "permission denied")
	}
	if name := spec.GetTrigger(); name != "" {
		if err := checkTriggerName("spec.trigger", name); err != nil {
			return nil, err
		}
		if err := allowTriggers(ctx, auth.PermArchiveReplay, name); err != nil {
			return nil, err
		}
	}
	// Output only: the server fills them.
	spec.ScopeTriggers, spec.CreatedBy = append([]string(nil), id.Scope.Triggers...), id.Subject
	job, err := s.r.StartReplay(ctx, spec)
	if err != nil {
		return nil, archiveStatus(err)
	}
	noteDetail(ctx, "replay %s", job.GetId())
	return &switchyardv1.StartReplayResponse{Replay: job}, nil
}

func (s *archiveService) GetReplay(ctx context.Context, req *switchyardv1.GetReplayRequest) (*switchyardv1.GetReplayResponse, error) {
	job, err := s.visibleReplay(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &switchyardv1.GetReplayResponse{Replay: job}, nil
}

func (s *archiveService) ListReplays(ctx context.Context, _ *switchyardv1.ListReplaysRequest) (*switchyardv1.ListReplaysResponse, error) {
	jobs, err := s.r.ListReplays(ctx)
	if err != nil {
		return nil, archiveStatus(err)
	}
	id := caller(ctx)
	out := &switchyardv1.ListReplaysResponse{}
	for _, j := range jobs {
		if replayVisible(id, j.GetSpec()) {
			out.Replays = append(out.Replays, j)
		}
	}
	return out, nil
}

func (s *archiveService) CancelReplay(ctx context.Context, req *switchyardv1.CancelReplayRequest) (*switchyardv1.CancelReplayResponse, error) {
	if _, err := s.visibleReplay(ctx, req.GetId()); err != nil {
		return nil, err
	}
	job, err := s.r.CancelReplay(ctx, req.GetId())
	if err != nil {
		return nil, archiveStatus(err)
	}
	noteDetail(ctx, "replay %s %s", job.GetId(), job.GetState())
	return &switchyardv1.CancelReplayResponse{Replay: job}, nil
}

// visibleReplay reads a job the caller may see; another's answers
// NOT_FOUND, as a missing one does.
func (s *archiveService) visibleReplay(ctx context.Context, id string) (*switchyardv1.Replay, error) {
	if !replayIDRE.MatchString(id) {
		return nil, invalidField("id", "want a replay id: r and 16 hex digits, got %q", truncateRunes(id, 64))
	}
	job, err := s.r.GetReplay(ctx, id)
	if err != nil {
		return nil, archiveStatus(err)
	}
	if !replayVisible(caller(ctx), job.GetSpec()) {
		var who string
		if c := caller(ctx); c != nil {
			who = c.Subject
		}
		noteDenied(ctx, &auth.DeniedError{Subject: who, Permission: auth.PermArchiveRead, Field: "trigger", Value: replayTarget(job.GetSpec())})
		return nil, archiveStatus(errors.Join(errors.New("replay "+id), store.ErrNotFound))
	}
	return job, nil
}

// replayTarget names what a replay reaches, for audit records.
func replayTarget(spec *switchyardv1.ReplaySpec) string {
	if t := spec.GetTrigger(); t != "" {
		return t
	}
	if spec.GetAllMatching() {
		return "all-matching"
	}
	return ""
}

// archiveStatus maps the router's archive errors: a refused spec names
// its field under "spec.", an archive that is off is FAILED_PRECONDITION.
func archiveStatus(err error) error {
	var re *router.ReplayError
	switch {
	case errors.As(err, &re):
		return invalidField("spec."+re.Field, "%s", re.Msg)
	case errors.Is(err, router.ErrArchiveOff):
		return withDetails(codes.FailedPrecondition, err.Error(),
			&errdetails.ErrorInfo{Reason: "ARCHIVE_OFF", Domain: "switchyard.io"})
	}
	return StatusFor(err)
}

// truncateRunes cuts s to n runes, for echoing input in errors.
func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
