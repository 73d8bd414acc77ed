package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router/filter"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/server"
)

// fakeTriggers is an in-memory TriggerService.
type fakeTriggers struct {
	switchyardv1.UnimplementedTriggerServiceServer
	mu       sync.Mutex
	calls    int
	triggers map[string]*switchyardv1.Trigger
	// applyErr, when set, may refuse an applied trigger.
	applyErr func(*switchyardv1.Trigger) error
	stats    []*switchyardv1.TriggerStats
	deleted  []*switchyardv1.DeleteTriggerRequest
	created  time.Time
	// lagging is answered as the instances that did not confirm a change.
	lagging []string
}

func (f *fakeTriggers) ApplyTrigger(_ context.Context, req *switchyardv1.ApplyTriggerRequest) (*switchyardv1.ApplyTriggerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	t := req.GetTrigger()
	if f.applyErr != nil {
		if err := f.applyErr(t); err != nil {
			return nil, err
		}
	}
	if f.triggers == nil {
		f.triggers = map[string]*switchyardv1.Trigger{}
	}
	old, exists := f.triggers[t.GetName()]
	stored := proto.Clone(t).(*switchyardv1.Trigger)
	resp := &switchyardv1.ApplyTriggerResponse{Created: !exists}
	if exists {
		cmp := proto.Clone(old).(*switchyardv1.Trigger)
		cmp.Generation, cmp.CreateTime, cmp.UpdateTime = 0, nil, nil
		if proto.Equal(cmp, t) {
			return &switchyardv1.ApplyTriggerResponse{Trigger: old}, nil
		}
		stored.Generation = old.GetGeneration() + 1
		stored.CreateTime = old.GetCreateTime()
	} else {
		stored.Generation = 1
		stored.CreateTime = timestamppb.New(f.created)
	}
	stored.UpdateTime = timestamppb.New(f.created)
	resp.Changed = true
	resp.Trigger = stored
	resp.LaggingInstances = f.lagging
	f.triggers[t.GetName()] = stored
	return resp, nil
}

func (f *fakeTriggers) GetTrigger(_ context.Context, req *switchyardv1.GetTriggerRequest) (*switchyardv1.GetTriggerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	t, ok := f.triggers[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	return &switchyardv1.GetTriggerResponse{Trigger: t}, nil
}

func (f *fakeTriggers) ListTriggers(context.Context, *switchyardv1.ListTriggersRequest) (*switchyardv1.ListTriggersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	resp := &switchyardv1.ListTriggersResponse{}
	for _, name := range sortedTriggerNames(f.triggers) {
		resp.Triggers = append(resp.Triggers, f.triggers[name])
	}
	return resp, nil
}

func (f *fakeTriggers) DeleteTrigger(_ context.Context, req *switchyardv1.DeleteTriggerRequest) (*switchyardv1.DeleteTriggerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := f.triggers[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	delete(f.triggers, req.GetName())
	f.deleted = append(f.deleted, req)
	kept := int64(7)
	if req.GetPurge() {
		kept = 0
	}
	return &switchyardv1.DeleteTriggerResponse{KeptEvents: kept, LaggingInstances: f.lagging}, nil
}

func (f *fakeTriggers) GetTriggerStats(_ context.Context, req *switchyardv1.GetTriggerStatsRequest) (*switchyardv1.GetTriggerStatsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	resp := &switchyardv1.GetTriggerStatsResponse{}
	for _, s := range f.stats {
		if req.GetName() == "" || s.GetName() == req.GetName() {
			resp.Stats = append(resp.Stats, s)
		}
	}
	if req.GetName() != "" && len(resp.Stats) == 0 {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	return resp, nil
}

func (f *fakeTriggers) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func sortedTriggerNames(m map[string]*switchyardv1.Trigger) []string {
	keys := make(map[string]string, len(m))
	for k := range m {
		keys[k] = k
	}
	return sortedKeys(keys)
}

// startFake serves the given services on a local port and returns its
// address.
func startFake(t *testing.T, triggers switchyardv1.TriggerServiceServer, events switchyardv1.EventServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if triggers != nil {
		switchyardv1.RegisterTriggerServiceServer(srv, triggers)
	}
	if events != nil {
		switchyardv1.RegisterEventServiceServer(srv, events)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const badTriggers = `name: Bad_Name
filter:
  cel: "type =="
  all:
  - cesql: "type = "
target: {grpc: "nohost"}
delivery: {max_attempts: -1, timeout: 1h}
---
name: ok
target: {url: "ftp://example.com"}
---
name: ok
target: {url: "http://example.com"}
`

func TestTriggerApplyValidatesClientSide(t *testing.T) {
	wantLines := []string{
		`bad.yaml:1: name: "Bad_Name" is not a valid name`,
		`bad.yaml:3: filter.cel: 1:`,
		`bad.yaml:5: filter.all[0].cesql: 1:`,
		`bad.yaml:6: target.grpc: "nohost" is not host:port`,
		`bad.yaml:7: delivery.timeout: must be at most 15m0s`,
		`bad.yaml:7: delivery.max_attempts: must be between 1 and 1000, got -1`,
		`bad.yaml:10: target.url: scheme must be http or https, not "ftp"`,
		`bad.yaml:12: name: "ok" is also defined at bad.yaml:9`,
	}
	check := func(t *testing.T, r result, file string) {
		t.Helper()
		if r.e == nil {
			t.Fatal("apply of an invalid file succeeded")
		}
		msg := r.e.Error()
		if strings.Contains(msg, "UNAVAILABLE") || strings.Contains(msg, "connection") {
			t.Fatalf("apply contacted the server: %v", msg)
		}
		if !strings.HasPrefix(msg, "invalid triggers, nothing applied (8 errors):\n") {
			t.Errorf("message starts %q", strings.SplitN(msg, "\n", 2)[0])
		}
		lines := strings.Split(msg, "\n")[1:]
		if len(lines) != len(wantLines) {
			t.Errorf("%d error lines, want %d:\n%s", len(lines), len(wantLines), msg)
		}
		if code := ExitCode(r.e); code != ExitInvalid {
			t.Errorf("exit code %d, want %d", code, ExitInvalid)
		}
		for _, want := range wantLines {
			want = strings.ReplaceAll(want, "bad.yaml", file)
			found := false
			for _, l := range lines {
				if strings.HasPrefix(l, "  "+want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no line starting %q in:\n%s", want, msg)
			}
		}
		if r.out != "" {
			t.Errorf("stdout = %q, want nothing", r.out)
		}
	}

	t.Run("closed port", func(t *testing.T) {
		path := writeFile(t, "bad.yaml", badTriggers)
		check(t, runCLI(t, "", "trigger", "apply", "-f", path, "--server", closedAddr(t)), path)
	})
	t.Run("stdin, no call", func(t *testing.T) {
		fake := &fakeTriggers{}
		addr := startFake(t, fake, nil)
		check(t, runCLI(t, badTriggers, "trigger", "apply", "-f", "-", "--server", addr), "<stdin>")
		if n := fake.callCount(); n != 0 {
			t.Errorf("%d calls made, want none", n)
		}
	})
	t.Run("one valid file and one invalid file", func(t *testing.T) {
		fake := &fakeTriggers{}
		addr := startFake(t, fake, nil)
		good := writeFile(t, "good.yaml", "name: good\ntarget: {grpc: 'fn:7070'}\n")
		bad := writeFile(t, "bad.yaml", "name: bad\ntarget: {}\n")
		r := runCLI(t, "", "trigger", "apply", "-f", good, "-f", bad, "--server", addr)
		if r.e == nil || !strings.Contains(r.e.Error(), bad+`:2: target: one of target.grpc, target.url, target.pull or target.publish is required`) {
			t.Errorf("err = %v", r.e)
		}
		if n := fake.callCount(); n != 0 {
			t.Errorf("%d calls made, want none", n)
		}
	})
	t.Run("unknown fields and wrong types, every one with its line", func(t *testing.T) {
		// Two files: YAML documents and a JSON array. Decoding problems and
		// rule errors are all reported, each with its file, line and path.
		yamlFile := writeFile(t, "trigger.yaml", `name: a
target: {grpc: "h:1"}
---
name: b
filter:
  attributes: {type: t}
  colour: red
target:
  grpc: "h:1"
delivery:
  timeout: 5s
  max_attempts: eight
  max_concurrency: 0
---
name: c
target: {grpc: "h:1"}
delivery: {max_queue: -5}
`)
		jsonFile := writeFile(t, "trigger.json", `[
  {"name": "d", "target": {"grpc": "h:1"}},
  {"name": "e",
   "target": {"grpc": ["h:1"]},
   "descripton": "typo"}
]`)
		r := runCLI(t, "", "trigger", "apply", "-f", yamlFile, "-f", jsonFile, "--server", closedAddr(t))
		want := "invalid triggers, nothing applied (5 errors):\n" +
			"  " + yamlFile + ":7: filter.colour: unknown field; want one of attributes, prefix, suffix, cesql, cel, all, any, not\n" +
			"  " + yamlFile + ":12: delivery.max_attempts: want an integer, got \"eight\"\n" +
			"  " + jsonFile + ":4: target.grpc: want a string, got a list\n" +
			"  " + jsonFile + ":5: descripton: unknown field; want one of name, description, filter, target, delivery, scope\n" +
			"  " + yamlFile + ":17: delivery.max_queue: must be between 1 and 100000000, got -5"
		if r.e == nil || r.e.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", r.e, want)
		}
		if code := ExitCode(r.e); code != ExitInvalid {
			t.Errorf("exit code %d, want %d", code, ExitInvalid)
		}
	})
	t.Run("no file", func(t *testing.T) {
		r := runCLI(t, "", "trigger", "apply", "--server", closedAddr(t))
		if r.e == nil || !strings.Contains(r.e.Error(), "-f FILE") {
			t.Errorf("err = %v", r.e)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		r := runCLI(t, "name: a\ntarget: {grpc: 'fn:1'}\n---\nname: b\ntarget: {url: 'http://x/'}\n",
			"trigger", "apply", "-f", "-", "--dry-run=client", "--server", closedAddr(t))
		if r.e != nil || r.out != "trigger/a valid (dry run)\ntrigger/b valid (dry run)\n" {
			t.Errorf("dry run: out %q, err %v", r.out, r.e)
		}
	})
}

const twoTriggers = `name: orders
description: order events
filter:
  attributes: {type: com.example.order.created}
  prefix: {source: /shop}
target: {grpc: "orders-fn:7070"}
delivery: {timeout: 5s, max_attempts: 5, max_queue: 1000}
---
name: audit
target: {url: "https://audit.example.com/events"}
`

func TestTriggerApplyReportsEachTrigger(t *testing.T) {
	fake := &fakeTriggers{created: time.Now().Add(-90 * time.Second)}
	addr := startFake(t, fake, nil)
	path := writeFile(t, "t.yaml", twoTriggers)

	r := runCLI(t, "", "trigger", "apply", "-f", path, "--server", addr)
	if r.e != nil || r.out != "trigger/orders created\ntrigger/audit created\n" {
		t.Fatalf("first apply: out %q, err %v", r.out, r.e)
	}
	r = runCLI(t, "", "trigger", "apply", "-f", path, "--server", addr)
	if r.e != nil || r.out != "trigger/orders unchanged\ntrigger/audit unchanged\n" {
		t.Fatalf("second apply: out %q, err %v", r.out, r.e)
	}
	changed := strings.Replace(twoTriggers, "max_attempts: 5", "max_attempts: 6", 1)
	r = runCLI(t, changed, "trigger", "apply", "-f", "-", "--server", addr)
	if r.e != nil || r.out != "trigger/orders configured\ntrigger/audit unchanged\n" {
		t.Fatalf("third apply: out %q, err %v", r.out, r.e)
	}
	if got := fake.triggers["orders"].GetDelivery().GetMaxAttempts(); got != 6 {
		t.Errorf("stored max_attempts = %d", got)
	}
}

// A change some instances had not confirmed succeeds, with a warning naming
// them on standard error.
func TestTriggerChangesWarnAboutLaggingInstances(t *testing.T) {
	fake := &fakeTriggers{lagging: []string{"host-b-12", "host-c-7"}}
	addr := startFake(t, fake, nil)
	r := runCLI(t, twoTriggers, "trigger", "apply", "-f", "-", "--server", addr)
	if r.e != nil || r.out != "trigger/orders created\ntrigger/audit created\n" {
		t.Fatalf("apply: out %q, err %v", r.out, r.e)
	}
	for _, name := range []string{"orders", "audit"} {
		want := "warning: trigger/" + name + ": not yet live on 2 instance(s): host-b-12, host-c-7"
		if !strings.Contains(r.err, want) {
			t.Errorf("apply stderr %q lacks %q", r.err, want)
		}
	}
	r = runCLI(t, "", "trigger", "delete", "orders", "--server", addr)
	if r.e != nil || !strings.HasPrefix(r.out, "trigger/orders deleted") {
		t.Fatalf("delete: out %q, err %v", r.out, r.e)
	}
	if want := "warning: trigger/orders: not yet live on 2 instance(s): host-b-12, host-c-7"; !strings.Contains(r.err, want) {
		t.Errorf("delete stderr %q lacks %q", r.err, want)
	}
	fake.mu.Lock()
	fake.lagging = nil
	fake.mu.Unlock()
	r = runCLI(t, "", "trigger", "delete", "audit", "--server", addr)
	if r.e != nil || r.err != "" {
		t.Fatalf("delete confirmed everywhere: stderr %q, err %v", r.err, r.e)
	}
}

// badRequest builds the INVALID_ARGUMENT error the server sends.
func badRequest(msg string, fields ...string) error {
	br := &errdetails.BadRequest{}
	for i := 0; i+1 < len(fields); i += 2 {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fields[i], Description: fields[i+1]})
	}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(br)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestTriggerApplyServerErrors(t *testing.T) {
	fake := &fakeTriggers{applyErr: func(t *switchyardv1.Trigger) error {
		if t.GetName() == "orders" {
			return badRequest("invalid trigger", "filter.cel", "1:3: undeclared reference to 'foo'", "target.grpc", "unknown host")
		}
		return nil
	}}
	addr := startFake(t, fake, nil)

	// One trigger: its error is the command's error.
	one := strings.SplitN(twoTriggers, "---\n", 2)[0]
	r := runCLI(t, one, "trigger", "apply", "-f", "-", "--server", addr)
	want := "trigger/orders: INVALID_ARGUMENT: invalid trigger\n" +
		"  filter.cel: 1:3: undeclared reference to 'foo'\n" +
		"  target.grpc: unknown host"
	if r.e == nil || r.e.Error() != want {
		t.Fatalf("err = %v\nwant:\n%s", r.e, want)
	}

	// Several: each failure on stderr, the others applied.
	r = runCLI(t, twoTriggers, "trigger", "apply", "-f", "-", "--server", addr)
	if r.e == nil || r.e.Error() != "1 of 2 triggers not applied" {
		t.Errorf("err = %v", r.e)
	}
	if r.out != "trigger/audit created\n" {
		t.Errorf("out = %q", r.out)
	}
	if r.err != want+"\n" {
		t.Errorf("stderr = %q, want %q", r.err, want+"\n")
	}

	// Unreachable server: stops at the first trigger.
	r = runCLI(t, twoTriggers, "trigger", "apply", "-f", "-", "--server", closedAddr(t), "--timeout", "2s")
	if r.e == nil || !strings.HasPrefix(r.e.Error(), "trigger/orders: UNAVAILABLE: ") || !strings.HasSuffix(r.e.Error(), "\n2 of 2 triggers not applied") {
		t.Errorf("err = %v", r.e)
	}
}

func sampleTriggers(created time.Time) []*switchyardv1.Trigger {
	specs := []trigger.Spec{
		{
			Name:   "audit",
			Target: trigger.Target{URL: "https://audit.example.com/events"},
			Filter: filter.Spec{Any: []filter.Spec{{CEL: "data.amount >\n 100"}, {Not: &filter.Spec{}}}},
		},
		{
			Name:        "orders",
			Description: "order events",
			Filter: filter.Spec{
				Attributes: map[string]string{"type": "com.example.order.created"},
				Prefix:     map[string]string{"source": "/shop"},
			},
			Target: trigger.Target{GRPC: "orders-fn:7070"},
		},
	}
	out := make([]*switchyardv1.Trigger, len(specs))
	for i, spec := range specs {
		spec.SetDefaults()
		tr := trigger.ToProto(spec)
		tr.Generation = int64(i + 2)
		tr.CreateTime = timestamppb.New(created)
		tr.UpdateTime = timestamppb.New(created.Add(time.Minute))
		out[i] = tr
	}
	return out
}

func TestTriggerListGet(t *testing.T) {
	created := time.Now().Add(-3*time.Hour - 5*time.Minute)
	fake := &fakeTriggers{triggers: map[string]*switchyardv1.Trigger{}}
	for _, tr := range sampleTriggers(created) {
		fake.triggers[tr.GetName()] = tr
	}
	addr := startFake(t, fake, nil)

	r := runCLI(t, "", "trigger", "list", "--server", addr)
	if r.e != nil {
		t.Fatal(r.e)
	}
	want := "NAME     TARGET                             FILTER                                          MAX_CONC   GEN   AGE\n" +
		"audit    https://audit.example.com/events   any(cel(data.amount > 100); not(*))             64         2     3h5m\n" +
		"orders   grpc://orders-fn:7070              type=com.example.order.created, source=/shop*   64         3     3h5m\n"
	if r.out != want {
		t.Errorf("list table:\n%s\nwant:\n%s", r.out, want)
	}

	// JSON: an array in the trigger file shape, which trigger.Parse reads back.
	r = runCLI(t, "", "trigger", "list", "-o", "json", "--server", addr)
	if r.e != nil {
		t.Fatal(r.e)
	}
	specs, err := trigger.Parse([]byte(r.out))
	if err != nil {
		t.Fatalf("list -o json does not parse as a trigger file: %v\n%s", err, r.out)
	}
	if len(specs) != 2 || specs[0].Name != "audit" || specs[1].Name != "orders" {
		t.Fatalf("parsed %+v", specs)
	}
	for _, s := range specs {
		if !proto.Equal(trigger.ToProto(s), withoutOutputOnly(fake.triggers[s.Name])) {
			t.Errorf("list -o json: %s does not round-trip", s.Name)
		}
	}
	if !strings.Contains(r.out, `"timeout": "10s"`) {
		t.Errorf("durations are not strings:\n%s", r.out)
	}

	// YAML: documents separated by ---, each with a comment.
	r = runCLI(t, "", "trigger", "list", "-o", "yaml", "--server", addr)
	if r.e != nil {
		t.Fatal(r.e)
	}
	specs, err = trigger.Parse([]byte(r.out))
	if err != nil || len(specs) != 2 {
		t.Fatalf("list -o yaml: %v, %d specs\n%s", err, len(specs), r.out)
	}
	if !strings.HasPrefix(r.out, "# trigger/audit: generation 2, created ") || !strings.Contains(r.out, "\n---\n# trigger/orders: generation 3") {
		t.Errorf("list -o yaml:\n%s", r.out)
	}

	// get -o json: one object.
	r = runCLI(t, "", "trigger", "get", "orders", "-o", "json", "--server", addr)
	if r.e != nil {
		t.Fatal(r.e)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.out), &obj); err != nil || obj["name"] != "orders" {
		t.Errorf("get -o json: %v %v\n%s", err, obj, r.out)
	}

	// get table.
	r = runCLI(t, "", "trigger", "get", "orders", "--server", addr)
	if r.e != nil || !strings.HasPrefix(r.out, "NAME ") || !strings.Contains(r.out, "\norders ") || strings.Contains(r.out, "audit") {
		t.Errorf("get table: %v\n%s", r.e, r.out)
	}

	// get of an unknown trigger.
	r = runCLI(t, "", "trigger", "get", "nope", "--server", addr)
	if r.e == nil || r.e.Error() != `trigger/nope: NOT_FOUND: trigger "nope" not found` {
		t.Errorf("get nope: %v", r.e)
	}
}

func TestTriggerGetYAMLRoundTrip(t *testing.T) {
	fake := &fakeTriggers{triggers: map[string]*switchyardv1.Trigger{}}
	for _, tr := range sampleTriggers(time.Now()) {
		fake.triggers[tr.GetName()] = tr
	}
	addr := startFake(t, fake, nil)
	for _, name := range []string{"orders", "audit"} {
		before := proto.Clone(fake.triggers[name]).(*switchyardv1.Trigger)
		r := runCLI(t, "", "trigger", "get", name, "-o", "yaml", "--server", addr)
		if r.e != nil {
			t.Fatal(r.e)
		}
		path := writeFile(t, name+".yaml", r.out)
		r2 := runCLI(t, "", "trigger", "apply", "-f", path, "--server", addr)
		if r2.e != nil || r2.out != "trigger/"+name+" unchanged\n" {
			t.Errorf("apply of get -o yaml output: %q, %v\n%s", r2.out, r2.e, r.out)
		}
		if !proto.Equal(fake.triggers[name], before) {
			t.Errorf("%s changed by the round trip", name)
		}
	}
}

func withoutOutputOnly(t *switchyardv1.Trigger) *switchyardv1.Trigger {
	c := proto.Clone(t).(*switchyardv1.Trigger)
	c.Generation, c.CreateTime, c.UpdateTime = 0, nil, nil
	return c
}

func TestTriggerDelete(t *testing.T) {
	fake := &fakeTriggers{triggers: map[string]*switchyardv1.Trigger{}}
	for _, tr := range sampleTriggers(time.Now()) {
		fake.triggers[tr.GetName()] = tr
	}
	addr := startFake(t, fake, nil)

	r := runCLI(t, "", "trigger", "delete", "orders", "--server", addr)
	if r.e != nil || r.out != "trigger/orders deleted (7 undelivered events kept; they resume if the trigger is created again)\n" {
		t.Errorf("delete: %q %v", r.out, r.e)
	}
	if r = runCLI(t, "", "trigger", "delete", "audit", "--purge", "-o", "json", "--server", addr); r.e == nil || ExitCode(r.e) != ExitInvalid {
		t.Errorf("delete -o json (a flag delete does not have): %v", r.e)
	}
	r = runCLI(t, "", "trigger", "delete", "audit", "--purge", "--server", addr)
	if r.e != nil || r.out != "trigger/audit deleted (purged)\n" {
		t.Errorf("delete --purge: %q %v", r.out, r.e)
	}
	if len(fake.deleted) != 2 || fake.deleted[0].GetPurge() || !fake.deleted[1].GetPurge() {
		t.Errorf("delete requests: %v", fake.deleted)
	}
	r = runCLI(t, "", "trigger", "delete", "orders", "--server", addr)
	if r.e == nil || !strings.Contains(r.e.Error(), "NOT_FOUND") {
		t.Errorf("second delete: %v", r.e)
	}
	if r := runCLI(t, "", "trigger", "delete", "--server", addr); r.e == nil {
		t.Error("delete without a name succeeded")
	}
}

func sampleStats() []*switchyardv1.TriggerStats {
	return []*switchyardv1.TriggerStats{
		{
			Name: "audit", Undelivered: 1310, MaxQueue: 100000, Queued: 1234, OldestAge: durationpb.New(95 * time.Second), InFlight: 64, MaxConcurrency: 64,
			RetriesScheduled: 12, Delayed: 2, DeadLetters: 3, Breaker: switchyardv1.BreakerState_BREAKER_STATE_OPEN,
			Delivered: 100000, FailedAttempts: 57, DeadLettered: 4, DeadLettersEvicted: 1, Enqueued: 101300,
			ConsecutiveFailures: 5, BreakerRetryTime: timestamppb.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)),
			Duplicates: 9, DedupWindow: durationpb.New(10 * time.Minute),
		},
		{Name: "orders", MaxQueue: 10, MaxConcurrency: 8, Breaker: switchyardv1.BreakerState_BREAKER_STATE_CLOSED, Delivered: 7, Enqueued: 7},
		{Name: "x", Undelivered: 3, MaxQueue: 3, Queued: 2, OldestAge: durationpb.New(300 * time.Millisecond), InFlight: 1, MaxConcurrency: 1, Breaker: switchyardv1.BreakerState_BREAKER_STATE_HALF_OPEN,
			Consumers: 2, Leased: 1},
	}
}

func TestPrintStatsTable(t *testing.T) {
	var b strings.Builder
	if err := printStats(&b, formatTable, sampleStats(), false); err != nil {
		t.Fatal(err)
	}
	want := "NAME     UNDELIVERED   QUEUED   OLDEST   IN_FLIGHT   RETRIES   DELAYED   DLQ   BREAKER     DELIVERED   FAILED   DEAD   CONSUMERS   DUPLICATES\n" +
		"audit    1310/100000   1234     1m35s    64/64       12        2         3     open        100000      57       4      0           9\n" +
		"orders   0/10          0        -        0/8         0         0         0     closed      7           0        0      0           0\n" +
		"x        3/3           2        300ms    1/1         0         0         0     half-open   0           0        0      2           0\n"
	if b.String() != want {
		t.Errorf("stats table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTriggerStats(t *testing.T) {
	fake := &fakeTriggers{stats: sampleStats()}
	addr := startFake(t, fake, nil)

	r := runCLI(t, "", "trigger", "stats", "--server", addr)
	if r.e != nil || strings.Count(r.out, "\n") != 4 {
		t.Errorf("stats: %v\n%s", r.e, r.out)
	}

	r = runCLI(t, "", "trigger", "stats", "audit", "-o", "json", "--server", addr)
	if r.e != nil {
		t.Fatal(r.e)
	}
	var one statsView
	if err := json.Unmarshal([]byte(r.out), &one); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	want := statsView{
		Name: "audit", Undelivered: 1310, MaxQueue: 100000, Queued: 1234, OldestAge: "1m35s", InFlight: 64, MaxConcurrency: 64, RetriesScheduled: 12, Delayed: 2,
		DeadLetters: 3, Breaker: "open", ConsecutiveFailures: 5, BreakerRetryTime: "2030-01-02T03:04:05Z",
		Enqueued: 101300, Duplicates: 9, DedupWindow: "10m0s", Delivered: 100000, FailedAttempts: 57, DeadLettered: 4, DeadLettersEvicted: 1,
	}
	if !reflect.DeepEqual(one, want) {
		t.Errorf("stats -o json:\n%+v\nwant\n%+v", one, want)
	}
	if !strings.Contains(r.out, `"queued": 1234`) {
		t.Errorf("counts are not JSON numbers:\n%s", r.out)
	}

	r = runCLI(t, "", "trigger", "stats", "-o", "yaml", "--server", addr)
	if r.e != nil || !strings.HasPrefix(r.out, "- breaker: open\n") || strings.Count(r.out, "\n- ") != 2 {
		t.Errorf("stats -o yaml: %v\n%s", r.e, r.out)
	}

	r = runCLI(t, "", "trigger", "stats", "nope", "--server", addr)
	if r.e == nil || !strings.HasPrefix(r.e.Error(), "trigger/nope: NOT_FOUND") {
		t.Errorf("stats nope: %v", r.e)
	}
	if r := runCLI(t, "", "trigger", "stats", "a", "b", "--server", addr); r.e == nil {
		t.Error("stats with two names succeeded")
	}
}

func TestSummarizeFilter(t *testing.T) {
	for _, tc := range []struct {
		f    filter.Spec
		max  int
		want string
	}{
		{filter.Spec{}, 60, "*"},
		{filter.Spec{Attributes: map[string]string{"type": "a", "source": "b"}}, 60, "source=b, type=a"},
		{filter.Spec{Prefix: map[string]string{"type": "com."}, Suffix: map[string]string{"subject": ".png"}}, 60, "type=com.*, subject=*.png"},
		{filter.Spec{CESQL: "type  =\n'a'", CEL: "true"}, 60, "cesql(type = 'a'), cel(true)"},
		{filter.Spec{All: []filter.Spec{{}, {CEL: "x"}}, Not: &filter.Spec{Attributes: map[string]string{"a": "1"}}}, 60, "all(*; cel(x)), not(a=1)"},
		{filter.Spec{Not: &filter.Spec{}}, 60, "not(*)"},
		{filter.Spec{CEL: strings.Repeat("é", 100)}, 10, "cel(ééééé…"},
	} {
		if got := summarizeFilter(tc.f, tc.max); got != tc.want {
			t.Errorf("summarizeFilter(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestTriggerTimeoutFlag(t *testing.T) {
	r := runCLI(t, "", "trigger", "list", "--server", closedAddr(t), "--timeout", "0s")
	if r.e == nil || !strings.Contains(r.e.Error(), "--timeout must be positive") {
		t.Errorf("err = %v", r.e)
	}
}

// TestEndToEnd runs a real server (embedded store) and sink, and drives them
// with trigger apply, trigger list, publish and trigger stats.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx := t.Context()
	srv, err := server.New(ctx, server.Config{
		HTTPAddr: "127.0.0.1:0",
		GRPCAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	api := srv.GRPCAddr()

	// One sink acknowledging after one failed attempt, one rejecting.
	okSink := startSink(t, "--fail-first", "1")
	deadSink := startSink(t, "--fail-code", "invalid_argument")

	file := `name: orders
filter:
  attributes: {type: com.example.order}
target: {grpc: "` + okSink.addr + `"}
delivery: {initial_backoff: 10ms, max_backoff: 20ms, max_attempts: 5}
---
name: rejects
filter:
  prefix: {type: com.example.}
target: {grpc: "` + deadSink.addr + `"}
delivery: {max_attempts: 5}
`
	r := runCLI(t, file, "trigger", "apply", "-f", "-", "--server", api)
	if r.e != nil || r.out != "trigger/orders created\ntrigger/rejects created\n" {
		t.Fatalf("apply: %q %v", r.out, r.e)
	}
	r = runCLI(t, "", "trigger", "list", "-o", "json", "--server", api)
	if r.e != nil {
		t.Fatal(r.e)
	}
	specs, err := trigger.Parse([]byte(r.out))
	if err != nil || len(specs) != 2 || specs[0].Name != "orders" || specs[0].Target.GRPC != okSink.addr ||
		specs[0].Delivery.InitialBackoff.Duration != 10*time.Millisecond || specs[0].Delivery.Timeout.Duration != trigger.DefaultTimeout {
		t.Fatalf("list -o json: %v %+v\n%s", err, specs, r.out)
	}

	data := `{"order":42,"note":"<größe>"}`
	r = runCLI(t, "", "publish", "--server", api, "--type", "com.example.order", "--source", "/shop",
		"--id", "ev-1", "--subject", "o-42", "--data", data, "--ext", "tenant=acme")
	if r.e != nil || r.out != "published ev-1\n" {
		t.Fatalf("publish: %q %v", r.out, r.e)
	}

	lines := okSink.waitLines(t, 2)
	for i, l := range lines {
		if l.ID != "ev-1" || l.Source != "/shop" || l.Type != "com.example.order" || l.Subject != "o-42" ||
			l.DataContentType != "application/json" || string(l.Data) != data || l.Extensions["tenant"] != "acme" ||
			l.Trigger != "orders" || l.IdempotencyKey != "/shop ev-1" || l.Attempt != i+1 {
			t.Errorf("line %d: %+v", i, l)
		}
	}
	if lines[0].Answer != "UNAVAILABLE" || lines[1].Answer != "OK" {
		t.Errorf("answers %q, %q", lines[0].Answer, lines[1].Answer)
	}
	dead := deadSink.waitLines(t, 1)
	if dead[0].Trigger != "rejects" || dead[0].Answer != "INVALID_ARGUMENT" {
		t.Errorf("rejecting sink line: %+v", dead[0])
	}

	// The figures settle: orders delivered once after one failure, rejects
	// dead-lettered at the first attempt.
	var stats []statsView
	waitFor(t, 10*time.Second, "trigger stats", func() bool {
		r := runCLI(t, "", "trigger", "stats", "-o", "json", "--server", api)
		if r.e != nil {
			t.Fatal(r.e)
		}
		stats = nil
		if err := json.Unmarshal([]byte(r.out), &stats); err != nil {
			t.Fatalf("%v\n%s", err, r.out)
		}
		return len(stats) == 2 && stats[0].Delivered == 1 && stats[1].DeadLettered == 1
	})
	if stats[0].Name != "orders" || stats[0].FailedAttempts != 1 || stats[1].Name != "rejects" || stats[1].DeadLetters != 1 {
		t.Errorf("stats: %+v", stats)
	}
	if n := len(deadSink.lines(t)); n != 1 {
		t.Errorf("rejecting sink called %d times, want 1", n)
	}

	r = runCLI(t, "", "trigger", "stats", "--server", api)
	if r.e != nil || !strings.Contains(r.out, "\norders ") || !strings.Contains(r.out, "DELIVERED") {
		t.Errorf("stats table: %v\n%s", r.e, r.out)
	}
	r = runCLI(t, "", "trigger", "delete", "rejects", "--purge", "--server", api)
	if r.e != nil || r.out != "trigger/rejects deleted (purged)\n" {
		t.Errorf("delete: %q %v", r.out, r.e)
	}
	r = runCLI(t, "", "trigger", "get", "rejects", "--server", api)
	if r.e == nil || !strings.Contains(r.e.Error(), "NOT_FOUND") {
		t.Errorf("get after delete: %v", r.e)
	}
	if !reflect.DeepEqual(okSink.lines(t), lines) {
		t.Error("the acknowledging sink got more calls")
	}
}
