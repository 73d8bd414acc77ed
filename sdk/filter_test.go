package sdk

import (
	"errors"
	"testing"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// TestDryRunRefusesAServerWithoutDryRuns: a server that predates dry runs
// (the fake: no TestFilter, and an ApplyTrigger that knows no dry_run)
// would apply the trigger, so nothing is sent.
func TestDryRunRefusesAServerWithoutDryRuns(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, Config{Address: addr})
	tr := &switchyardv1.Trigger{Name: "orders", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "127.0.0.1:7070"}}}
	_, err := c.DryRunApplyTrigger(testCtx(t), tr)
	if !errors.Is(err, ErrDryRunUnsupported) {
		t.Fatalf("got %v, want ErrDryRunUnsupported", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.triggers) != 0 {
		t.Fatalf("the trigger reached the server: %v", f.triggers)
	}
	if _, err := c.DryRunApplyTrigger(testCtx(t), nil); err == nil {
		t.Fatal("a nil trigger was accepted")
	}
}
