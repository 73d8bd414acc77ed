package cli

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// laneTriggers is fakeTriggers with one blocked lane, "acct-7", that a
// skip unblocks.
type laneTriggers struct {
	*fakeTriggers
	mu      sync.Mutex
	skipped []*switchyardv1.SkipLaneRequest
}

func (l *laneTriggers) SkipLane(_ context.Context, req *switchyardv1.SkipLaneRequest) (*switchyardv1.SkipLaneResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.GetKey() != "acct-7" || len(l.skipped) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "trigger %s, key %q: the lane is not blocked", req.GetName(), req.GetKey())
	}
	l.skipped = append(l.skipped, req)
	return &switchyardv1.SkipLaneResponse{}, nil
}

func TestSkipLaneAndLanesInStats(t *testing.T) {
	stats := sampleStats()
	stats[1].LanesActive, stats[1].LanesBlocked, stats[1].LaneWaiting = 12, 1, 40
	stats[1].BlockedLanes = []*switchyardv1.BlockedLane{{Key: "acct-7", DeadLetterId: "1733500000000-0"}}
	fake := &laneTriggers{fakeTriggers: &fakeTriggers{stats: stats}}
	addr := startFake(t, fake, nil)

	r := runCLI(t, "", "trigger", "stats", "--server", addr)
	if r.e != nil || !strings.HasSuffix(r.out, "orders: lanes 12 active, 1 blocked; 40 events wait behind an earlier one of their key\n"+
		`  blocked: key "acct-7" by dead letter 1733500000000-0 (replay it, or: switchyard trigger skip-lane orders --key "acct-7")`+"\n") {
		t.Errorf("stats: %v\n%s", r.e, r.out)
	}
	r = runCLI(t, "", "trigger", "stats", "orders", "-o", "json", "--server", addr)
	if r.e != nil || !strings.Contains(r.out, `"lanes_blocked": 1`) || !strings.Contains(r.out, `"dead_letter_id": "1733500000000-0"`) {
		t.Errorf("stats -o json: %v\n%s", r.e, r.out)
	}

	if r := runCLI(t, "", "trigger", "skip-lane", "orders", "--server", addr); r.e == nil || ExitCode(r.e) != 2 {
		t.Errorf("skip-lane without --key: %v", r.e)
	}
	r = runCLI(t, "", "trigger", "skip-lane", "orders", "--key", "acct-7", "--server", addr)
	if r.e != nil || r.out != "trigger/orders lane \"acct-7\" unblocked\n" {
		t.Errorf("skip-lane: %v\n%s", r.e, r.out)
	}
	if len(fake.skipped) != 1 || fake.skipped[0].GetName() != "orders" {
		t.Errorf("requests: %v", fake.skipped)
	}
	r = runCLI(t, "", "trigger", "skip-lane", "orders", "--key", "acct-7", "--server", addr)
	if r.e == nil || !strings.Contains(r.e.Error(), "not blocked") {
		t.Errorf("second skip-lane: %v", r.e)
	}
}
