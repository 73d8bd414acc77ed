package cli

import (
	"strings"
	"testing"
)

// TestTriggerGetYAMLKeepsDedupOff: a trigger that turns deduplication off
// (dedup_window: 0s, whatever the server's default) prints it, and
// applying the printed file keeps it off; an unset window is named in the
// comment of server settings instead.
func TestTriggerGetYAMLKeepsDedupOff(t *testing.T) {
	api := startDLQServer(t)
	mustRun(t, "name: off\ntarget: {grpc: 'h:1'}\ndelivery: {dedup_window: 0s}\n---\nname: set\ntarget: {grpc: 'h:1'}\ndelivery: {dedup_window: 90s}\n",
		"trigger", "apply", "-f", "-", "--server", api)
	off := mustRun(t, "", "trigger", "get", "off", "-o", "yaml", "--server", api).out
	if !strings.Contains(off, "dedup_window: 0s\n") || strings.Contains(off, "delivery.dedup_window (") {
		t.Errorf("dedup off:\n%s", off)
	}
	set := mustRun(t, "", "trigger", "get", "set", "-o", "yaml", "--server", api).out
	if !strings.Contains(set, "dedup_window: 1m30s\n") {
		t.Errorf("dedup set:\n%s", set)
	}
	// Applied again as printed: unchanged.
	again := mustRun(t, off, "trigger", "apply", "-f", "-", "--server", api).out
	if !strings.Contains(again, "unchanged") {
		t.Errorf("re-applying the printed trigger changed it:\n%s", again)
	}
}
