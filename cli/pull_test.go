package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPullPrintsAndAnswers(t *testing.T) {
	addr := startDLQServer(t)
	r := runCLI(t, "name: jobs\nfilter: {attributes: {type: job}}\ntarget: {pull: {}}\ndelivery: {initial_backoff: 10ms, max_backoff: 20ms}\n",
		"trigger", "apply", "-f", "-", "--server", addr)
	if r.e != nil {
		t.Fatalf("apply: %v %s", r.e, r.err)
	}
	for i := range 3 {
		if r := runCLI(t, "", "publish", "--server", addr, "--type", "job", "--source", "/cli", "--id", fmt.Sprint(i), "--data", `{"n": 1}`); r.e != nil {
			t.Fatalf("publish: %v %s", r.e, r.err)
		}
	}
	lines := func(out string) []sinkLine {
		var ls []sinkLine
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var sl sinkLine
			if err := json.Unmarshal([]byte(l), &sl); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			ls = append(ls, sl)
		}
		return ls
	}

	// A nack leaves the event for later: the same one comes again, attempt 2.
	r = runCLI(t, "", "pull", "--server", addr, "--trigger", "jobs", "--max", "1", "--nack")
	if r.e != nil {
		t.Fatalf("pull --nack: %v %s", r.e, r.err)
	}
	first := lines(r.out)
	if len(first) != 1 || first[0].Answer != "RETRY" || first[0].Attempt != 1 || first[0].Trigger != "jobs" || fmt.Sprint(first[0].Data) != "map[n:1]" {
		t.Fatalf("nack printed %+v", first)
	}
	if _, err := time.Parse(time.RFC3339Nano, first[0].Deadline); err != nil {
		t.Fatalf("no lease deadline: %+v", first[0])
	}

	r = runCLI(t, "", "pull", "--server", addr, "--trigger", "jobs", "--max", "3", "--ack")
	if r.e != nil {
		t.Fatalf("pull --ack: %v %s", r.e, r.err)
	}
	got := map[string]int{}
	for _, l := range lines(r.out) {
		if l.Answer != "OK" {
			t.Fatalf("ack printed %+v", l)
		}
		got[l.ID] = l.Attempt
	}
	want := map[string]int{"0": 1, "1": 1, "2": 1}
	want[first[0].ID] = 2
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPullErrors(t *testing.T) {
	addr := startDLQServer(t)
	if r := runCLI(t, "", "pull", "--server", addr, "--trigger", "nope", "--max", "1"); ExitCode(r.e) != ExitNotFound {
		t.Fatalf("unknown trigger: exit %d (%v)", ExitCode(r.e), r.e)
	}
	if r := runCLI(t, "", "pull", "--server", addr, "--trigger", "x", "--ack", "--nack"); ExitCode(r.e) != ExitInvalid {
		t.Fatalf("--ack --nack: exit %d (%v)", ExitCode(r.e), r.e)
	}
	if r := runCLI(t, "", "pull", "--server", addr); ExitCode(r.e) != ExitInvalid {
		t.Fatalf("no --trigger: exit %d (%v)", ExitCode(r.e), r.e)
	}
	if r := runCLI(t, "", "pull", "--server", addr, "--trigger", "x", "--max", "-1"); ExitCode(r.e) != ExitInvalid {
		t.Fatalf("--max -1: exit %d (%v)", ExitCode(r.e), r.e)
	}
}
