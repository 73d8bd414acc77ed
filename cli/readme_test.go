package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestREADMETryAFilter runs the README's "Try a filter" examples: filter
// test of the quickstart's trigger against its events prints the table
// shown, and a dry run of a change to it the diff shown.
func TestREADMETryAFilter(t *testing.T) {
	quickstart := testenv.READMEBlock(t, "quickstart-trigger")
	events := testenv.READMEBlock(t, "filter-test-events")
	wantTest := testenv.READMEBlock(t, "filter-test-output")
	wantDryRun := testenv.READMEBlock(t, "dry-run-output")
	t.Chdir(t.TempDir())
	if err := os.WriteFile("trigger.yaml", []byte(quickstart), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("events.jsonl", []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", "filter", "test", "-f", "trigger.yaml", "--event", "events.jsonl")
	if r.e != nil {
		t.Fatal(r.e)
	}
	if got, want := strings.Join(trimRight(strings.Split(r.out, "\n")), "\n"), wantTest; got != want {
		t.Errorf("filter test prints:\n%s\nthe README shows:\n%s", got, want)
	}

	api := startAPIServer(t)
	mustRun(t, quickstart, "trigger", "apply", "-f", "-", "--server", api)
	changed := strings.NewReplacer("max_attempts: 8", "max_attempts: 5", "data.total > 100", "data.total > 500").Replace(quickstart)
	r = runCLI(t, changed, "trigger", "apply", "-f", "-", "--dry-run", "--server", api)
	if r.e != nil {
		t.Fatal(r.e)
	}
	if got, want := strings.Join(trimRight(strings.Split(r.out, "\n")), "\n"), wantDryRun; got != want {
		t.Errorf("trigger apply --dry-run prints:\n%s\nthe README shows:\n%s", got, want)
	}
}
