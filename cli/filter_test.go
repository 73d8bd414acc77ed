package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// startAPIServer runs a server on the embedded store and returns its gRPC
// address.
func startAPIServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(t.Context(), server.Config{
		HTTPAddr: "127.0.0.1:0",
		GRPCAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv.GRPCAddr()
}

const filterTriggers = `name: orders
filter:
  attributes: {type: com.example.order.created}
  prefix: {source: /shop/}
  cesql: "subject LIKE 'eu-%'"
  cel: "data.total > 100"
target: {grpc: "127.0.0.1:7070"}
---
name: not-shop
filter:
  any:
  - suffix: {type: .deleted}
  - not: {prefix: {source: /shop/}}
target: {grpc: "127.0.0.1:7070"}
`

const filterEvents = `{"specversion":"1.0","id":"1","source":"/shop/eu","type":"com.example.order.created","subject":"eu-42","data":{"total":150}}
{"specversion":"1.0","id":"2","source":"/shop/us","type":"com.example.order.created","subject":"us-1","data":{"total":50}}

{"specversion":"1.0","id":"3","source":"/shop/eu","type":"com.example.order.created","datacontenttype":"text/plain","data":"total=500"}
{"specversion":"1.0","id":"4","source":"/bank","type":"com.example.order.deleted"}
`

// verdictKey is a verdict as tests compare them.
type verdictKey struct {
	at, id, trigger string
	matched         bool
	failed          []string // paths of the failing top-level clauses
}

func verdictKeys(t *testing.T, out string) []verdictKey {
	t.Helper()
	var vs []filterVerdict
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	var keys []verdictKey
	for _, v := range vs {
		k := verdictKey{at: v.Event.At, id: v.Event.ID, trigger: v.Trigger, matched: v.Matched}
		for _, c := range v.Clauses {
			if !c.Held {
				k.failed = append(k.failed, c.Path)
			}
		}
		keys = append(keys, k)
	}
	return keys
}

func TestFilterTestOffline(t *testing.T) {
	trig := writeFile(t, "orders.yaml", filterTriggers)
	evs := writeFile(t, "events.jsonl", filterEvents)
	r := runCLI(t, "", "filter", "test", "-f", trig, "--event", evs, "--server", closedAddr(t))
	if r.e != nil {
		t.Fatalf("filter test: %v", r.e)
	}
	for _, want := range []string{
		evs + ":1   1    orders     yes",
		evs + ":2   2    orders     no      filter.cesql (subject LIKE 'eu-%'): evaluated to false",
		"filter.cel (data.total > 100): evaluated to false",
		`filter.cel (data.total > 100): evaluation failed: no such key: total; the datacontenttype is "text/plain", not JSON, so data is a string`,
		"filter.cesql (subject LIKE 'eu-%'): evaluation failed: missing attribute error: subject; reading an absent attribute is an error in CESQL: guard it with EXISTS",
		evs + ":1   1    not-shop   no      filter.any: none of the 2 alternatives matches",
		`  filter.any[0].suffix.type: type "com.example.order.created" does not end with ".deleted"`,
		"  filter.any[1].not: the negated filter matches",
		`    filter.any[1].not.prefix.source: source "/shop/eu" starts with "/shop/"`,
		evs + ":5   4    not-shop   yes",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("no %q in:\n%s", want, r.out)
		}
	}

	r = runCLI(t, filterEvents, "filter", "test", "-f", trig, "-o", "json")
	if r.e != nil {
		t.Fatal(r.e)
	}
	got := verdictKeys(t, r.out)
	want := []verdictKey{
		{"<stdin>:1", "1", "orders", true, nil},
		{"<stdin>:1", "1", "not-shop", false, []string{"filter.any"}},
		{"<stdin>:2", "2", "orders", false, []string{"filter.cesql", "filter.cel"}},
		{"<stdin>:2", "2", "not-shop", false, []string{"filter.any"}},
		{"<stdin>:4", "3", "orders", false, []string{"filter.cesql", "filter.cel"}},
		{"<stdin>:4", "3", "not-shop", false, []string{"filter.any"}},
		{"<stdin>:5", "4", "orders", false, []string{"filter.attributes.type", "filter.prefix.source", "filter.cesql", "filter.cel"}},
		{"<stdin>:5", "4", "not-shop", true, nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("verdicts:\n got %+v\nwant %+v", got, want)
	}
}

func TestFilterTestRefusals(t *testing.T) {
	trig := writeFile(t, "orders.yaml", filterTriggers)
	evs := writeFile(t, "events.jsonl", filterEvents)
	bad := writeFile(t, "bad.jsonl", filterEvents+`{"specversion":"1.0","id":"5","type":"t"}`+"\n")
	cases := map[string]struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		"no trigger":             {"", []string{"--event", evs}, ExitInvalid, "pass -f FILE"},
		"trigger file on stdin":  {filterTriggers, []string{"-f", "-"}, ExitInvalid, "pass --event FILE"},
		"both on stdin":          {filterTriggers, []string{"-f", "-", "--event", "-"}, ExitInvalid, "cannot both read standard input"},
		"invalid event":          {"", []string{"-f", trig, "--event", bad}, ExitInvalid, bad + `:6: missing required attribute "source"`},
		"invalid trigger file":   {"", []string{"-f", writeFile(t, "t.yaml", "name: x\nfilter: {cel: 'data.'}\ntarget: {grpc: 'a:1'}\n"), "--event", evs}, ExitInvalid, "t.yaml:2: filter.cel: 1:"},
		"no events":              {"\n", []string{"-f", trig}, ExitInvalid, "no events"},
		"bad trigger name":       {"", []string{"--trigger", "Bad", "--event", evs}, ExitInvalid, "--trigger Bad"},
		"on-server without file": {"", []string{"--trigger", "x", "--on-server", "--event", evs}, ExitInvalid, "--on-server"},
		"missing events file":    {"", []string{"-f", trig, "--event", evs + ".missing"}, ExitFailure, "no such file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, tc.stdin, append([]string{"filter", "test", "--server", closedAddr(t)}, tc.args...)...)
			if r.e == nil || !strings.Contains(r.e.Error(), tc.msg) || ExitCode(r.e) != tc.code {
				t.Fatalf("err %v (exit %d), want exit %d with %q", r.e, ExitCode(r.e), tc.code, tc.msg)
			}
			if r.out != "" {
				t.Errorf("stdout %q", r.out)
			}
		})
	}
}

// TestFilterTestAgreesWithServerAndRouting: offline, stored (--trigger)
// and draft (--on-server) tests give the same verdicts, and they are the
// routing of the same events published.
func TestFilterTestAgreesWithServerAndRouting(t *testing.T) {
	api := startAPIServer(t)
	trig := writeFile(t, "orders.yaml", filterTriggers)
	evs := writeFile(t, "events.jsonl", filterEvents)
	if r := runCLI(t, "", "trigger", "apply", "-f", trig, "--server", api); r.e != nil {
		t.Fatal(r.e)
	}
	offline := runCLI(t, "", "filter", "test", "-f", trig, "--event", evs, "-o", "json")
	stored := runCLI(t, "", "filter", "test", "--trigger", "orders", "--trigger", "not-shop", "--event", evs, "-o", "json", "--server", api)
	drafts := runCLI(t, "", "filter", "test", "-f", trig, "--on-server", "--event", evs, "-o", "json", "--server", api)
	for _, r := range []result{offline, stored, drafts} {
		if r.e != nil {
			t.Fatal(r.e)
		}
	}
	want := verdictKeys(t, offline.out)
	if got := verdictKeys(t, stored.out); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored triggers:\n got %+v\nwant %+v", got, want)
	}
	if got := verdictKeys(t, drafts.out); !reflect.DeepEqual(got, want) {
		t.Fatalf("drafts:\n got %+v\nwant %+v", got, want)
	}

	loaded, err := readEventFiles(nil, []string{evs})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{Address: api})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, e := range loaded {
		res, err := c.Events().Publish(t.Context(), &switchyardv1.PublishRequest{Event: e.ev})
		if err != nil {
			t.Fatal(err)
		}
		routed := map[string]bool{}
		for _, n := range res.GetTriggers() {
			routed[n] = true
		}
		for _, v := range want {
			if v.id == e.ev.GetId() && v.matched != routed[v.trigger] {
				t.Errorf("event %s, trigger %s: filter test says %v, routing %v", v.id, v.trigger, v.matched, routed[v.trigger])
			}
		}
	}

	r := runCLI(t, "", "filter", "test", "--trigger", "nope", "--event", evs, "--server", api)
	if r.e == nil || ExitCode(r.e) != ExitNotFound || !strings.Contains(r.e.Error(), "trigger/nope: NOT_FOUND") {
		t.Fatalf("missing trigger: %v (exit %d)", r.e, ExitCode(r.e))
	}
}

func TestTriggerApplyDryRun(t *testing.T) {
	api := startAPIServer(t)
	orders := "name: orders\nfilter: {attributes: {type: a}}\ntarget: {grpc: '127.0.0.1:7070'}\n"
	audit := "name: audit\ntarget: {url: 'https://audit.example.com/events'}\n"
	if r := runCLI(t, orders+"---\n"+audit, "trigger", "apply", "-f", "-", "--server", api); r.e != nil {
		t.Fatal(r.e)
	}
	changed := "name: orders\ndescription: billing\nfilter: {attributes: {type: b}}\ntarget: {grpc: '127.0.0.1:7070'}\ndelivery: {max_attempts: 3}\n"
	file := changed + "---\n" + audit + "---\nname: fresh\ntarget: {grpc: '127.0.0.1:7071'}\n"
	r := runCLI(t, file, "trigger", "apply", "-f", "-", "--dry-run", "--server", api)
	if r.e != nil {
		t.Fatal(r.e)
	}
	want := []string{
		"TRIGGER   RESULT (DRY RUN)   FIELD                    BEFORE   AFTER",
		`orders    configured         delivery.max_attempts    8        3`,
		`                             description              -        "billing"`,
		`                             filter.attributes.type   "a"      "b"`,
		"audit     unchanged",
		"fresh     created",
	}
	if got := strings.Split(strings.TrimRight(r.out, "\n"), "\n"); !reflect.DeepEqual(trimRight(got), want) {
		t.Fatalf("dry run:\n%s\nwant:\n%s", r.out, strings.Join(want, "\n"))
	}
	g := runCLI(t, "", "trigger", "get", "orders", "-o", "json", "--server", api)
	if g.e != nil || !strings.Contains(g.out, `"type": "a"`) || strings.Contains(g.out, "billing") {
		t.Fatalf("the dry run changed the trigger: %v\n%s", g.e, g.out)
	}
	if l := runCLI(t, "", "trigger", "get", "fresh", "--server", api); ExitCode(l.e) != ExitNotFound {
		t.Fatalf("the dry run created a trigger: %v", l.e)
	}

	r = runCLI(t, file, "trigger", "apply", "-f", "-", "--dry-run", "-o", "json", "--server", api)
	if r.e != nil {
		t.Fatal(r.e)
	}
	var outcomes []applyOutcome
	if err := json.Unmarshal([]byte(r.out), &outcomes); err != nil {
		t.Fatal(err, r.out)
	}
	if len(outcomes) != 3 || outcomes[0].Result != "configured" || !outcomes[0].DryRun || outcomes[0].Generation != 2 ||
		outcomes[0].Trigger.Delivery.MaxAttempts != 3 || outcomes[0].Trigger.Delivery.MaxQueue == 0 || len(outcomes[0].Changes) != 3 ||
		outcomes[1].Result != "unchanged" || outcomes[2].Result != "created" || outcomes[2].Generation != 1 {
		t.Fatalf("outcomes %+v", outcomes)
	}

	// The server's checks, which the files cannot make (the secrets it
	// holds), refuse a dry run as they refuse the apply.
	secret := "name: orders\ntarget: {grpc: '127.0.0.1:7070', auth: {bearer_secret: nope}}\n"
	dry := runCLI(t, secret, "trigger", "apply", "-f", "-", "--dry-run", "--server", api)
	real := runCLI(t, secret, "trigger", "apply", "-f", "-", "--server", api)
	if dry.e == nil || ExitCode(dry.e) != ExitInvalid || real.e == nil || dry.e.Error() != real.e.Error() || !strings.Contains(dry.e.Error(), "target.auth.bearer_secret") {
		t.Fatalf("dry run: %v\napply: %v", dry.e, real.e)
	}

	// A server without dry runs would apply: nothing is sent.
	fake := &fakeTriggers{}
	r = runCLI(t, orders, "trigger", "apply", "-f", "-", "--dry-run", "--server", startFake(t, fake, nil))
	if r.e == nil || !strings.Contains(r.e.Error(), "does not support dry runs") || fake.callCount() != 0 {
		t.Fatalf("old server: %v, %d calls", r.e, fake.callCount())
	}
	if r := runCLI(t, orders, "trigger", "apply", "-f", "-", "--dry-run=maybe"); ExitCode(r.e) != ExitInvalid {
		t.Fatalf("--dry-run=maybe: %v", r.e)
	}
}

func trimRight(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(l, " ")
	}
	return out
}
