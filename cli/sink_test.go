package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
)

// sinkProc is a sink command running in-process.
type sinkProc struct {
	addr      string
	out, errb *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

// startSink runs "switchyard sink --listen 127.0.0.1:0 args..." until the
// test ends.
func startSink(t *testing.T, args ...string) *sinkProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &sinkProc{out: &syncBuffer{}, errb: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	root := NewRoot()
	root.SetArgs(append([]string{"sink", "--listen", "127.0.0.1:0"}, args...))
	root.SetOut(p.out)
	root.SetErr(p.errb)
	go func() { p.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Error("sink did not stop")
		}
	})
	const prefix = "sink listening on "
	deadline := time.Now().Add(5 * time.Second)
	for {
		if first, _, ok := strings.Cut(p.errb.String(), "\n"); ok {
			addr, found := strings.CutPrefix(first, prefix)
			if !found {
				t.Fatalf("sink's first stderr line is %q", first)
			}
			p.addr = addr
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("sink exited: %v (stderr %q)", err, p.errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sink did not print its address")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop stops the sink and returns the command's error.
func (p *sinkProc) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("sink did not stop")
		return nil
	}
}

// printedLine is a sink line as read back by a test, with the data raw.
type printedLine struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	Extensions      map[string]any  `json:"extensions"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
	Attempt         int             `json:"attempt"`
	Trigger         string          `json:"trigger"`
	IdempotencyKey  string          `json:"idempotency_key"`
	Round           int             `json:"round"`
	Deadline        string          `json:"deadline"`
	ReceivedAt      string          `json:"received_at"`
	Answer          string          `json:"answer"`
}

// lines parses every line printed so far; each must be one JSON object.
func (p *sinkProc) lines(t *testing.T) []printedLine {
	t.Helper()
	var out []printedLine
	for _, raw := range strings.SplitAfter(p.out.String(), "\n") {
		if raw == "" {
			continue
		}
		if !strings.HasSuffix(raw, "\n") {
			// A line being written; the mutex makes this impossible.
			t.Fatalf("partial line %q", raw)
		}
		var l printedLine
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", raw, err)
		}
		out = append(out, l)
	}
	return out
}

// waitLines waits until n lines are printed and returns them.
func (p *sinkProc) waitLines(t *testing.T, n int) []printedLine {
	t.Helper()
	waitFor(t, 10*time.Second, "sink lines", func() bool { return strings.Count(p.out.String(), "\n") >= n })
	return p.lines(t)[:n]
}

// functionClient dials the sink.
func functionClient(t *testing.T, addr string) (functionv1.FunctionServiceClient, *grpc.ClientConn) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return functionv1.NewFunctionServiceClient(conn), conn
}

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// fullEvent has every core attribute, extensions of every type, and data.
func fullEvent(data []byte, contentType string) *pb.CloudEvent {
	ev := &pb.CloudEvent{
		Id:          "id-1",
		Source:      "/src",
		SpecVersion: "1.0",
		Type:        "com.example.t",
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"subject":    str("sub/1"),
			"time":       {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC))}},
			"dataschema": {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/schema.json"}},
			"tenant":     str("acme"),
			"count":      {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 42}},
			"flag":       {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
			"blob":       {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{0, 1, 2}}},
			"ref":        {Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "/a/b"}},
			"at":         {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))}},
		},
	}
	if contentType != "" {
		ev.Attributes["datacontenttype"] = str(contentType)
	}
	if data != nil {
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
	}
	return ev
}

func invokeReq(ev *pb.CloudEvent, attempt int32) *functionv1.InvokeRequest {
	return &functionv1.InvokeRequest{
		Event:          ev,
		Attempt:        attempt,
		Trigger:        "orders",
		IdempotencyKey: ev.GetSource() + " " + ev.GetId(),
		Deadline:       timestamppb.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)),
	}
}

func TestSinkPrintsEvents(t *testing.T) {
	p := startSink(t)
	client, _ := functionClient(t, p.addr)
	ctx := t.Context()

	jsonData := []byte(`{"a":[1,2.50,-0e3],"s":"<é>\u00e9\"","n":null}`)
	textData := []byte("line 1\nline 2\t\"quoted\" ünï <&> \x7f")
	binData := []byte{0xff, 0x00, 0xfe, 'a', 0x80}
	cases := []struct {
		name, ct string
		data     []byte
		check    func(t *testing.T, l printedLine)
	}{
		{"json", "application/json; charset=utf-8", jsonData, func(t *testing.T, l printedLine) {
			if string(l.Data) != string(jsonData) || l.DataBase64 != "" {
				t.Errorf("data %s, data_base64 %q; want %s", l.Data, l.DataBase64, jsonData)
			}
		}},
		{"cloudevents+json", "application/vnd.x+json", []byte(` {"a" : 1,` + "\n" + ` "b":[ ]} `), func(t *testing.T, l printedLine) {
			if string(l.Data) != `{"a":1,"b":[]}` {
				t.Errorf("data %s, want it compacted", l.Data)
			}
		}},
		{"text", "text/plain", textData, func(t *testing.T, l printedLine) {
			var s string
			if err := json.Unmarshal(l.Data, &s); err != nil || s != string(textData) {
				t.Errorf("data %s (%v), want the string %q", l.Data, err, textData)
			}
		}},
		{"invalid json as text", "application/json", []byte(`{"a":`), func(t *testing.T, l printedLine) {
			if string(l.Data) != `"{\"a\":"` {
				t.Errorf("data %s", l.Data)
			}
		}},
		{"json without content type is json", "", []byte(`{"a": 1}`), func(t *testing.T, l printedLine) {
			if string(l.Data) != `{"a":1}` || l.DataContentType != "" {
				t.Errorf("data %s, content type %q", l.Data, l.DataContentType)
			}
		}},
		{"binary", "application/octet-stream", binData, func(t *testing.T, l printedLine) {
			got, err := base64.StdEncoding.DecodeString(l.DataBase64)
			if err != nil || string(got) != string(binData) || l.Data != nil {
				t.Errorf("data_base64 %q (%v), data %s", l.DataBase64, err, l.Data)
			}
		}},
		{"empty data", "text/plain", []byte{}, func(t *testing.T, l printedLine) {
			if string(l.Data) != `""` {
				t.Errorf("data %s, want \"\"", l.Data)
			}
		}},
		{"no data", "", nil, func(t *testing.T, l printedLine) {
			if l.Data != nil || l.DataBase64 != "" {
				t.Errorf("data %s, data_base64 %q; want neither", l.Data, l.DataBase64)
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			resp, err := client.Invoke(ctx, invokeReq(fullEvent(tc.data, tc.ct), 3))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOutcome() != functionv1.Outcome_OUTCOME_ACK {
				t.Errorf("outcome %v", resp.GetOutcome())
			}
			l := p.waitLines(t, i+1)[i]
			tc.check(t, l)
			if l.SpecVersion != "1.0" || l.ID != "id-1" || l.Source != "/src" || l.Type != "com.example.t" ||
				l.Subject != "sub/1" || l.Time != "2025-06-07T08:09:10.123456789Z" || l.DataContentType != tc.ct ||
				l.DataSchema != "https://example.com/schema.json" {
				t.Errorf("attributes: %+v", l)
			}
			wantExt := map[string]any{
				"tenant": "acme", "count": float64(42), "flag": true, "blob": "AAEC", "ref": "/a/b", "at": "2024-01-02T03:04:05Z",
			}
			if len(l.Extensions) != len(wantExt) {
				t.Errorf("extensions %v, want %v", l.Extensions, wantExt)
			}
			for k, v := range wantExt {
				if l.Extensions[k] != v {
					t.Errorf("extension %s = %#v, want %#v", k, l.Extensions[k], v)
				}
			}
			if l.Attempt != 3 || l.Trigger != "orders" || l.IdempotencyKey != "/src id-1" ||
				l.Deadline != "2030-01-01T00:00:00Z" || l.Answer != "OK" || l.Round != 0 {
				t.Errorf("invocation fields: %+v", l)
			}
			rec, err := time.Parse(time.RFC3339Nano, l.ReceivedAt)
			if err != nil || rec.Before(before.Add(-time.Second)) || rec.After(time.Now().Add(time.Second)) {
				t.Errorf("received_at %q (%v)", l.ReceivedAt, err)
			}
		})
	}
	if strings.Count(p.out.String(), "\n") != len(cases) {
		t.Errorf("stdout has %d lines, want %d", strings.Count(p.out.String(), "\n"), len(cases))
	}
}

// A replayed event's line says its round; a first life's leaves it out.
func TestSinkPrintsReplayRound(t *testing.T) {
	p := startSink(t)
	client, _ := functionClient(t, p.addr)
	req := invokeReq(fullEvent(nil, ""), 1)
	req.Round = 2
	if _, err := client.Invoke(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if l := p.waitLines(t, 1)[0]; l.Round != 2 || l.Attempt != 1 {
		t.Errorf("round %d, attempt %d; want 2, 1", l.Round, l.Attempt)
	}
	req.Round = 0
	if _, err := client.Invoke(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	p.waitLines(t, 2)
	if second := strings.Split(p.out.String(), "\n")[1]; strings.Contains(second, `"round"`) {
		t.Errorf("a first life's line has a round: %s", second)
	}
}

func TestSinkTextDataVariant(t *testing.T) {
	p := startSink(t)
	client, _ := functionClient(t, p.addr)
	ev := fullEvent(nil, "application/json")
	ev.Data = &pb.CloudEvent_TextData{TextData: `{"k":"v"}`}
	if _, err := client.Invoke(t.Context(), invokeReq(ev, 1)); err != nil {
		t.Fatal(err)
	}
	if l := p.waitLines(t, 1)[0]; string(l.Data) != `{"k":"v"}` {
		t.Errorf("data %s", l.Data)
	}
}

func TestSinkFailFirst(t *testing.T) {
	p := startSink(t, "--fail-first", "2")
	client, _ := functionClient(t, p.addr)
	for attempt := int32(1); attempt <= 3; attempt++ {
		resp, err := client.Invoke(t.Context(), invokeReq(fullEvent([]byte("x"), "text/plain"), attempt))
		if attempt <= 2 {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("attempt %d: err %v, want UNAVAILABLE", attempt, err)
			}
			continue
		}
		if err != nil || resp.GetOutcome() != functionv1.Outcome_OUTCOME_ACK {
			t.Errorf("attempt %d: %v %v, want an ack", attempt, resp, err)
		}
	}
	lines := p.waitLines(t, 3)
	for i, want := range []string{"UNAVAILABLE", "UNAVAILABLE", "OK"} {
		if lines[i].Answer != want || lines[i].Attempt != i+1 {
			t.Errorf("line %d: attempt %d answer %q, want %q", i, lines[i].Attempt, lines[i].Answer, want)
		}
	}
}

func TestSinkFailCode(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		p := startSink(t, "--fail-code", "invalid_argument")
		client, _ := functionClient(t, p.addr)
		for _, attempt := range []int32{1, 7} {
			_, err := client.Invoke(t.Context(), invokeReq(fullEvent([]byte("x"), "text/plain"), attempt))
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("attempt %d: err %v, want INVALID_ARGUMENT", attempt, err)
			}
		}
		for _, l := range p.waitLines(t, 2) {
			if l.Answer != "INVALID_ARGUMENT" || l.ID != "id-1" || string(l.Data) != `"x"` {
				t.Errorf("line %+v", l)
			}
		}
	})
	t.Run("first attempts, by number", func(t *testing.T) {
		p := startSink(t, "--fail-code", "13", "--fail-first", "1")
		client, _ := functionClient(t, p.addr)
		_, err := client.Invoke(t.Context(), invokeReq(fullEvent(nil, ""), 1))
		if status.Code(err) != codes.Internal {
			t.Errorf("attempt 1: %v, want INTERNAL", err)
		}
		if _, err := client.Invoke(t.Context(), invokeReq(fullEvent(nil, ""), 2)); err != nil {
			t.Errorf("attempt 2: %v", err)
		}
		lines := p.waitLines(t, 2)
		if lines[0].Answer != "INTERNAL" || lines[1].Answer != "OK" {
			t.Errorf("answers %q %q", lines[0].Answer, lines[1].Answer)
		}
	})
}

func TestSinkDelay(t *testing.T) {
	p := startSink(t, "--delay", "2s")
	client, _ := functionClient(t, p.addr)

	start := time.Now()
	if _, err := client.Invoke(t.Context(), invokeReq(fullEvent(nil, ""), 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("answered after %v, want at least 2s", d)
	}

	// A caller that gives up first: the sink stops waiting too.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := client.Invoke(ctx, invokeReq(fullEvent(nil, ""), 2))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("err %v, want DEADLINE_EXCEEDED", err)
	}
	lines := p.waitLines(t, 2)
	if lines[0].Answer != "OK" || (lines[1].Answer != "DEADLINE_EXCEEDED" && lines[1].Answer != "CANCELLED") {
		t.Errorf("answers %q %q", lines[0].Answer, lines[1].Answer)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("the cancelled call was printed after %v: the delay ignored the context", d)
	}
}

func TestSinkHealthConcurrencyAndStop(t *testing.T) {
	p := startSink(t)
	client, conn := functionClient(t, p.addr)
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", functionv1.FunctionService_ServiceDesc.ServiceName} {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, resp, err)
		}
	}

	// Concurrent calls with large data never interleave their lines.
	const n = 40
	big := strings.Repeat("abcdefghij", 20_000)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := fullEvent([]byte(big), "text/plain")
			ev.Id = "id-" + strings.Repeat("x", i)
			if _, err := client.Invoke(t.Context(), invokeReq(ev, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	lines := p.waitLines(t, n)
	seen := map[string]bool{}
	for _, l := range lines {
		var s string
		if err := json.Unmarshal(l.Data, &s); err != nil || s != big {
			t.Fatalf("line of %s: data corrupted", l.ID)
		}
		seen[l.ID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct events printed, want %d", len(seen), n)
	}

	if err := p.stop(t); err != nil {
		t.Errorf("sink stopped with %v", err)
	}
	if !strings.HasSuffix(p.errb.String(), "sink stopped\n") {
		t.Errorf("stderr %q", p.errb.String())
	}
	if _, err := client.Invoke(t.Context(), invokeReq(fullEvent(nil, ""), 1)); status.Code(err) != codes.Unavailable {
		t.Errorf("call after stop: %v, want UNAVAILABLE", err)
	}
}

func TestSinkRefusesUndecodableEvent(t *testing.T) {
	p := startSink(t)
	client, _ := functionClient(t, p.addr)
	_, err := client.Invoke(t.Context(), &functionv1.InvokeRequest{Attempt: 1})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("err %v, want INVALID_ARGUMENT", err)
	}
	if p.out.String() != "" {
		t.Errorf("stdout %q", p.out.String())
	}
}

func TestSinkFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--fail-first", "-1"},
		{"--fail-code", "nope"},
		{"--fail-code", "OK"},
		{"--fail-code", "99"},
		{"--delay", "-1s"},
		{"--listen", "not-an-address"},
	} {
		r := runCLI(t, "", append([]string{"sink"}, args...)...)
		if r.e == nil {
			t.Errorf("sink %v: no error", args)
		}
	}
}

func TestSinkFails(t *testing.T) {
	for _, tc := range []struct {
		failFirst int
		code      string
		codeSet   bool
		attempts  map[int]bool
	}{
		{0, "", false, map[int]bool{0: false, 1: false, 5: false}},
		{2, "", false, map[int]bool{0: true, 1: true, 2: true, 3: false}},
		{0, "aborted", true, map[int]bool{1: true, 100: true}},
		{1, "aborted", true, map[int]bool{1: true, 2: false}},
	} {
		s, err := newSink(nil, nil, tc.failFirst, tc.code, tc.codeSet, 0)
		if err != nil {
			t.Fatal(err)
		}
		for attempt, want := range tc.attempts {
			if got := s.fails(attempt); got != want {
				t.Errorf("fail-first %d, code %q: fails(%d) = %v", tc.failFirst, tc.code, attempt, got)
			}
		}
	}
}
