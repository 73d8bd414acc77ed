package sdk

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// fakeSwitchyard is a small in-memory EventService and TriggerService.
type fakeSwitchyard struct {
	switchyardv1.UnimplementedEventServiceServer
	switchyardv1.UnimplementedTriggerServiceServer

	mu       sync.Mutex
	calls    int
	received []*pb.CloudEvent
	fail     error // returned by every event call when set
	block    bool  // event calls wait for their context to end
	triggers map[string]*switchyardv1.Trigger
	purged   []string
	md       metadata.MD // of the last event call
}

func (f *fakeSwitchyard) eventCall(ctx context.Context, evs ...*pb.CloudEvent) error {
	f.mu.Lock()
	f.calls++
	f.md, _ = metadata.FromIncomingContext(ctx)
	fail, block := f.fail, f.block
	if fail == nil && !block {
		f.received = append(f.received, evs...)
	}
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return fail
}

func (f *fakeSwitchyard) Publish(ctx context.Context, req *switchyardv1.PublishRequest) (*switchyardv1.PublishResponse, error) {
	if err := f.eventCall(ctx, req.GetEvent()); err != nil {
		return nil, err
	}
	return &switchyardv1.PublishResponse{}, nil
}

func (f *fakeSwitchyard) PublishBatch(ctx context.Context, req *switchyardv1.PublishBatchRequest) (*switchyardv1.PublishBatchResponse, error) {
	if err := f.eventCall(ctx, req.GetEvents()...); err != nil {
		return nil, err
	}
	return &switchyardv1.PublishBatchResponse{Accepted: int32(len(req.GetEvents()))}, nil
}

func (f *fakeSwitchyard) ApplyTrigger(_ context.Context, req *switchyardv1.ApplyTriggerRequest) (*switchyardv1.ApplyTriggerResponse, error) {
	t := req.GetTrigger()
	if strings.Contains(t.GetFilter().GetCel(), "((") {
		return nil, statusWith(codes.InvalidArgument, "invalid trigger", &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "filter.cel", Description: "1:3: Syntax error: unexpected '('"},
			},
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.triggers == nil {
		f.triggers = map[string]*switchyardv1.Trigger{}
	}
	old, existed := f.triggers[t.GetName()]
	stored := proto.Clone(t).(*switchyardv1.Trigger)
	changed := true
	if existed {
		stored.Generation = old.GetGeneration()
		changed = !proto.Equal(old, stored)
	}
	if changed {
		stored.Generation++
	}
	f.triggers[t.GetName()] = stored
	return &switchyardv1.ApplyTriggerResponse{Trigger: stored, Created: !existed, Changed: changed}, nil
}

func (f *fakeSwitchyard) GetTrigger(_ context.Context, req *switchyardv1.GetTriggerRequest) (*switchyardv1.GetTriggerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.triggers[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	return &switchyardv1.GetTriggerResponse{Trigger: t}, nil
}

func (f *fakeSwitchyard) ListTriggers(context.Context, *switchyardv1.ListTriggersRequest) (*switchyardv1.ListTriggersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &switchyardv1.ListTriggersResponse{}
	for _, t := range f.triggers {
		resp.Triggers = append(resp.Triggers, t)
	}
	slices.SortFunc(resp.Triggers, func(a, b *switchyardv1.Trigger) int { return strings.Compare(a.GetName(), b.GetName()) })
	return resp, nil
}

func (f *fakeSwitchyard) DeleteTrigger(_ context.Context, req *switchyardv1.DeleteTriggerRequest) (*switchyardv1.DeleteTriggerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.triggers[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	delete(f.triggers, req.GetName())
	if req.GetPurge() {
		f.purged = append(f.purged, req.GetName())
		return &switchyardv1.DeleteTriggerResponse{}, nil
	}
	return &switchyardv1.DeleteTriggerResponse{KeptEvents: 3}, nil
}

func (f *fakeSwitchyard) GetTriggerStats(_ context.Context, req *switchyardv1.GetTriggerStatsRequest) (*switchyardv1.GetTriggerStatsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &switchyardv1.GetTriggerStatsResponse{}
	for name := range f.triggers {
		if req.GetName() == "" || req.GetName() == name {
			resp.Stats = append(resp.Stats, &switchyardv1.TriggerStats{Name: name, Queued: 5, Breaker: switchyardv1.BreakerState_BREAKER_STATE_CLOSED})
		}
	}
	if req.GetName() != "" && len(resp.Stats) == 0 {
		return nil, status.Errorf(codes.NotFound, "trigger %q not found", req.GetName())
	}
	slices.SortFunc(resp.Stats, func(a, b *switchyardv1.TriggerStats) int { return strings.Compare(a.GetName(), b.GetName()) })
	return resp, nil
}

func (f *fakeSwitchyard) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeSwitchyard) snapshot() (int, []*pb.CloudEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, slices.Clone(f.received)
}

// statusWith builds a status error with details.
func statusWith(code codes.Code, msg string, details ...proto.Message) error {
	st := status.New(code, msg)
	if len(details) == 0 {
		return st.Err()
	}
	v1 := make([]protoadapt.MessageV1, len(details))
	for i, d := range details {
		v1[i] = protoadapt.MessageV1Of(d)
	}
	st, err := st.WithDetails(v1...)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// startFake runs a fakeSwitchyard on 127.0.0.1:0 and returns it with its
// address; it is stopped at the end of the test.
func startFake(t *testing.T) (*fakeSwitchyard, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSwitchyard{}
	srv := grpc.NewServer()
	switchyardv1.RegisterEventServiceServer(srv, f)
	switchyardv1.RegisterTriggerServiceServer(srv, f)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return f, lis.Addr().String()
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testEvent(id string, data []byte) event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/sdk/test")
	ev.SetType("com.example.test")
	if data != nil {
		ev.SetDataContentType("application/json")
		ev.DataEncoded = data
	}
	return ev
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "zero value uses defaults", cfg: Config{}},
		{name: "host and port", cfg: Config{Address: "switchyard.internal:9090", Timeout: time.Second}},
		{name: "ipv6", cfg: Config{Address: "[::1]:9090"}},
		{name: "dns target", cfg: Config{Address: "dns:///switchyard:9090"}},
		{name: "unix target", cfg: Config{Address: "unix:///run/switchyard.sock"}},
		{name: "no port", cfg: Config{Address: "switchyard"}, wantErr: "want host:port"},
		{name: "empty port", cfg: Config{Address: "switchyard:"}, wantErr: "has no port"},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}, wantErr: "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			_, err = New(tt.cfg)
			if (err != nil) != (tt.wantErr != "") {
				t.Fatalf("New() = %v", err)
			}
		})
	}
	d := Config{}.WithDefaults()
	if d.Address != "localhost:9090" || d.Timeout != 10*time.Second {
		t.Errorf("defaults = %+v", d)
	}
}

func TestNewTransportCredentials(t *testing.T) {
	f, addr := startFake(t)
	tests := []struct {
		name    string
		opts    []grpc.DialOption
		publish bool
	}{
		{name: "plaintext by default", publish: true},
		{name: "other options keep the plaintext default", opts: []grpc.DialOption{grpc.WithUserAgent("sdk-test")}, publish: true},
		{name: "explicit insecure", opts: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, publish: true},
		// TLS against a plaintext server cannot publish; New must still accept
		// the credentials instead of overriding or rejecting them.
		{name: "tls", opts: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12}))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{Address: addr, DialOptions: tt.opts, Timeout: 2 * time.Second})
			if !tt.publish {
				if err := c.Publish(testCtx(t), testEvent("tls", nil)); err == nil {
					t.Fatal("TLS client published to a plaintext server")
				}
				return
			}
			if err := c.Publish(testCtx(t), testEvent("x", nil)); err != nil {
				t.Fatal(err)
			}
		})
	}
	if calls, _ := f.snapshot(); calls != 3 {
		t.Errorf("server saw %d calls, want 3", calls)
	}
}

func TestPublishHappyPath(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, Config{Address: addr})

	ev := testEvent("one", []byte("{ \"total\" :  9.90 ,\n\"items\":[] }\n"))
	ev.SetSubject("orders/1")
	ev.SetTime(time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC))
	ev.SetExtension("tenant", "acme")
	ev.SetExtension("priority", 7)
	ev.SetExtension("urgent", true)
	if err := c.Publish(testCtx(t), ev); err != nil {
		t.Fatal(err)
	}

	bin := testEvent("two", nil)
	bin.SetDataContentType("application/octet-stream")
	bin.DataEncoded = []byte{0, 0xff, 0x10, 0x80}
	batch := []event.Event{bin, testEvent("three", nil), testEvent("four", []byte(`"x"`))}
	if err := c.PublishBatch(testCtx(t), batch); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishBatch(testCtx(t), nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}

	calls, got := f.snapshot()
	if calls != 2 {
		t.Errorf("calls = %d, want 2 (the empty batch makes none)", calls)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.GetId())
	}
	if strings.Join(ids, ",") != "one,two,three,four" {
		t.Fatalf("received %v", ids)
	}
	first := got[0]
	if !bytes.Equal(first.GetBinaryData(), ev.Data()) {
		t.Errorf("data = %q, want %q", first.GetBinaryData(), ev.Data())
	}
	a := first.GetAttributes()
	if a["tenant"].GetCeString() != "acme" || a["priority"].GetCeInteger() != 7 || !a["urgent"].GetCeBoolean() ||
		a["subject"].GetCeString() != "orders/1" || a["datacontenttype"].GetCeString() != "application/json" ||
		!a["time"].GetCeTimestamp().AsTime().Equal(ev.Time()) {
		t.Errorf("attributes = %v", a)
	}
	if !bytes.Equal(got[1].GetBinaryData(), []byte{0, 0xff, 0x10, 0x80}) {
		t.Errorf("binary data = %v", got[1].GetBinaryData())
	}
	if got[2].GetData() != nil {
		t.Errorf("event without data was sent with data %v", got[2].GetData())
	}
}

func TestPublishServerErrors(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, Config{Address: addr})

	type check func(t *testing.T, err error)
	pushback := func(after time.Duration, trigger string) check {
		return func(t *testing.T, err error) {
			var pe *PushbackError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %T %v, want *PushbackError", err, err)
			}
			if pe.RetryAfter != after || pe.Trigger != trigger {
				t.Errorf("PushbackError = {RetryAfter %v, Trigger %q}, want {%v, %q}", pe.RetryAfter, pe.Trigger, after, trigger)
			}
		}
	}
	invalid := func(want ...Violation) check {
		return func(t *testing.T, err error) {
			var ie *InvalidEventError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %T %v, want *InvalidEventError", err, err)
			}
			if !slices.Equal(ie.Violations, want) {
				t.Errorf("violations = %v, want %v", ie.Violations, want)
			}
		}
	}
	unavailable := func(t *testing.T, err error) {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	}
	plain := func(t *testing.T, err error) {
		var pe *PushbackError
		var ie *InvalidEventError
		if errors.As(err, &pe) || errors.As(err, &ie) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %T %v, want a plain status error", err, err)
		}
	}

	tests := []struct {
		name      string
		serverErr error
		code      codes.Code
		retryable bool
		msg       string // substring of err.Error()
		check     check
	}{
		{
			name: "pushback with retry info and error info",
			serverErr: statusWith(codes.ResourceExhausted, "queue of trigger billing is full",
				&errdetails.RetryInfo{RetryDelay: durationpb.New(2500 * time.Millisecond)},
				&errdetails.ErrorInfo{Reason: "QUEUE_FULL", Domain: "switchyard.io", Metadata: map[string]string{"trigger": "billing"}},
				&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "trigger:other"}}}),
			code: codes.ResourceExhausted, retryable: true,
			msg:   `switchyard: pushed back by trigger "billing", retry after 2.5s: queue of trigger billing is full`,
			check: pushback(2500*time.Millisecond, "billing"),
		},
		{
			name: "pushback naming the trigger in a quota failure",
			serverErr: statusWith(codes.ResourceExhausted, "queue full",
				&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "triggers/audit", Description: "max_queue 100000 reached"}}},
				&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}),
			code: codes.ResourceExhausted, retryable: true,
			check: pushback(time.Second, "audit"),
		},
		{
			name:      "pushback without details",
			serverErr: status.Error(codes.ResourceExhausted, "slow down"),
			code:      codes.ResourceExhausted, retryable: true,
			msg:   "switchyard: pushed back: slow down",
			check: pushback(0, ""),
		},
		{
			name:      "a message over the server's bound is invalid, not a pushback",
			serverErr: status.Error(codes.ResourceExhausted, "grpc: received message larger than max (80000 vs. 69632)"),
			code:      codes.ResourceExhausted,
			msg:       "switchyard: invalid event: grpc: received message larger than max (80000 vs. 69632)",
			check:     invalid(),
		},
		{
			name: "invalid argument with bad request",
			serverErr: statusWith(codes.InvalidArgument, "invalid events", &errdetails.BadRequest{
				FieldViolations: []*errdetails.BadRequest_FieldViolation{
					{Field: "events[0].source", Description: "must be a URI-reference"},
					{Field: "events[2].spec_version", Description: `unsupported "0.3"`},
				},
			}),
			code: codes.InvalidArgument,
			msg:  `switchyard: invalid event: events[0].source: must be a URI-reference; events[2].spec_version: unsupported "0.3"`,
			check: invalid(
				Violation{Field: "events[0].source", Description: "must be a URI-reference"},
				Violation{Field: "events[2].spec_version", Description: `unsupported "0.3"`}),
		},
		{
			name:      "invalid argument without details",
			serverErr: status.Error(codes.InvalidArgument, "batch larger than 1000 events"),
			code:      codes.InvalidArgument,
			msg:       "switchyard: invalid event: batch larger than 1000 events",
			check:     invalid(),
		},
		{
			name:      "unavailable",
			serverErr: status.Error(codes.Unavailable, "store unreachable"),
			code:      codes.Unavailable, retryable: true,
			msg:   "switchyard: unavailable: rpc error: code = Unavailable desc = store unreachable",
			check: unavailable,
		},
		{name: "aborted", serverErr: status.Error(codes.Aborted, "conflict"), code: codes.Aborted, retryable: true, check: plain},
		{name: "internal", serverErr: status.Error(codes.Internal, "bug"), code: codes.Internal, check: plain},
		{name: "permission denied", serverErr: status.Error(codes.PermissionDenied, "no"), code: codes.PermissionDenied, check: plain},
	}
	calls := map[string]func() error{
		"Publish": func() error { return c.Publish(testCtx(t), testEvent("a", nil)) },
		"PublishBatch": func() error {
			return c.PublishBatch(testCtx(t), []event.Event{testEvent("a", nil), testEvent("b", nil)})
		},
	}
	for _, tt := range tests {
		for name, call := range calls {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				f.setFail(tt.serverErr)
				err := call()
				if err == nil {
					t.Fatal("no error")
				}
				if got := status.Code(err); got != tt.code {
					t.Errorf("status.Code = %v, want %v", got, tt.code)
				}
				if got := IsRetryable(err); got != tt.retryable {
					t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
				}
				if tt.msg != "" && err.Error() != tt.msg {
					t.Errorf("Error() = %q, want %q", err.Error(), tt.msg)
				}
				// The status error, with its details, stays in the chain.
				st, ok := status.FromError(err)
				if !ok || len(st.Details()) != len(status.Convert(tt.serverErr).Details()) {
					t.Errorf("status lost from the chain: %v, %v", st, ok)
				}
				tt.check(t, err)
			})
		}
	}
}

func TestPublishUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	c := newClient(t, Config{Address: addr, Timeout: 5 * time.Second})
	err = c.Publish(testCtx(t), testEvent("x", nil))
	if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) || status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestTimeout(t *testing.T) {
	f, addr := startFake(t)
	f.mu.Lock()
	f.block = true
	f.mu.Unlock()
	c := newClient(t, Config{Address: addr, Timeout: 100 * time.Millisecond})
	start := time.Now()
	err := c.Publish(testCtx(t), testEvent("slow", nil))
	if status.Code(err) != codes.DeadlineExceeded || !IsRetryable(err) {
		t.Fatalf("err = %v, want DEADLINE_EXCEEDED", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("call took %v despite the 100ms timeout", elapsed)
	}
	// A shorter deadline on the context wins, and cancellation is not retryable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = c.Publish(ctx, testEvent("cancelled", nil))
	if status.Code(err) != codes.Canceled || IsRetryable(err) {
		t.Fatalf("err = %v, want CANCELED", err)
	}
}

func TestClientSideValidation(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, Config{Address: addr})

	noSource := testEvent("b", nil)
	noSource.SetSource("")
	bare := event.New() // no id, source or type
	badSchema := testEvent("d", nil)
	badSchema.SetDataSchema("relative/schema")

	tests := []struct {
		name   string
		call   func() error
		fields []string
		msg    string
	}{
		{
			name:   "publish",
			call:   func() error { return c.Publish(testCtx(t), bare) },
			fields: []string{"event.id", "event.source", "event.type"},
		},
		{
			name: "batch names every bad index",
			call: func() error {
				return c.PublishBatch(testCtx(t), []event.Event{testEvent("a", nil), noSource, testEvent("c", nil), badSchema})
			},
			fields: []string{"events[1].source", `events[3].attributes["dataschema"]`},
			msg:    "switchyard: invalid event: events[1].source: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ie *InvalidEventError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %T %v, want *InvalidEventError", err, err)
			}
			var fields []string
			for _, v := range ie.Violations {
				fields = append(fields, v.Field)
				if v.Description == "" {
					t.Errorf("violation %s has no description", v.Field)
				}
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields = %v, want %v", fields, tt.fields)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), tt.msg)
			}
			if status.Code(err) != codes.InvalidArgument || IsRetryable(err) {
				t.Errorf("code %v retryable %v", status.Code(err), IsRetryable(err))
			}
			var ve event.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("sdk-go ValidationError not in the chain of %v", err)
			}
		})
	}
	if calls, _ := f.snapshot(); calls != 0 {
		t.Errorf("invalid events reached the server (%d calls)", calls)
	}
}

func TestTriggers(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, Config{Address: addr})
	ctx := testCtx(t)

	billing := &switchyardv1.Trigger{
		Name:   "billing",
		Filter: &switchyardv1.Filter{Prefix: map[string]string{"type": "com.example.order."}},
		Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Grpc{Grpc: "billing:8080"}},
	}
	audit := &switchyardv1.Trigger{Name: "audit", Target: &switchyardv1.Target{Kind: &switchyardv1.Target_Url{Url: "https://audit.example.com/events"}}}

	steps := []struct {
		name    string
		trigger *switchyardv1.Trigger
		created bool
		changed bool
	}{
		{"create", billing, true, true},
		{"same again", billing, false, false},
		{"create another", audit, true, true},
	}
	for _, s := range steps {
		resp, err := c.ApplyTrigger(ctx, s.trigger)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if resp.GetCreated() != s.created || resp.GetChanged() != s.changed {
			t.Errorf("%s: created %v changed %v, want %v %v", s.name, resp.GetCreated(), resp.GetChanged(), s.created, s.changed)
		}
	}

	got, err := c.GetTrigger(ctx, "billing")
	if err != nil || got.GetTarget().GetGrpc() != "billing:8080" || got.GetGeneration() != 1 {
		t.Fatalf("GetTrigger = %v, %v", got, err)
	}
	list, err := c.ListTriggers(ctx)
	if err != nil || len(list) != 2 || list[0].GetName() != "audit" || list[1].GetName() != "billing" {
		t.Fatalf("ListTriggers = %v, %v", list, err)
	}
	stats, err := c.TriggerStats(ctx, "")
	if err != nil || len(stats) != 2 {
		t.Fatalf("TriggerStats(all) = %v, %v", stats, err)
	}
	stats, err = c.TriggerStats(ctx, "audit")
	if err != nil || len(stats) != 1 || stats[0].GetName() != "audit" || stats[0].GetQueued() != 5 {
		t.Fatalf("TriggerStats(audit) = %v, %v", stats, err)
	}

	del, err := c.DeleteTrigger(ctx, "billing", false)
	if err != nil || del.GetKeptEvents() != 3 {
		t.Fatalf("DeleteTrigger = %v, %v", del, err)
	}
	if _, err := c.DeleteTrigger(ctx, "audit", true); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	purged := slices.Clone(f.purged)
	f.mu.Unlock()
	if !slices.Equal(purged, []string{"audit"}) {
		t.Errorf("purged = %v", purged)
	}

	errTests := []struct {
		name  string
		call  func() error
		code  codes.Code
		check func(t *testing.T, err error)
	}{
		{name: "get unknown", call: func() error { _, err := c.GetTrigger(ctx, "billing"); return err }, code: codes.NotFound},
		{name: "delete unknown", call: func() error { _, err := c.DeleteTrigger(ctx, "nope", false); return err }, code: codes.NotFound},
		{name: "stats unknown", call: func() error { _, err := c.TriggerStats(ctx, "nope"); return err }, code: codes.NotFound},
		{
			name: "invalid filter",
			call: func() error {
				_, err := c.ApplyTrigger(ctx, &switchyardv1.Trigger{Name: "bad", Filter: &switchyardv1.Filter{Cel: "a(("}})
				return err
			},
			code: codes.InvalidArgument,
			check: func(t *testing.T, err error) {
				var te *InvalidTriggerError
				if !errors.As(err, &te) || len(te.Violations) != 1 || te.Violations[0].Field != "filter.cel" {
					t.Fatalf("err = %T %v, want *InvalidTriggerError on filter.cel", err, err)
				}
				if want := "switchyard: invalid trigger: filter.cel: 1:3: Syntax error: unexpected '('"; err.Error() != want {
					t.Errorf("Error() = %q, want %q", err.Error(), want)
				}
			},
		},
		{
			name: "nil trigger",
			call: func() error { _, err := c.ApplyTrigger(ctx, nil); return err },
			code: codes.InvalidArgument,
			check: func(t *testing.T, err error) {
				var te *InvalidTriggerError
				if !errors.As(err, &te) {
					t.Fatalf("err = %T %v", err, err)
				}
			},
		},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || IsRetryable(err) {
				t.Fatalf("err = %v (retryable %v), want %v", err, IsRetryable(err), tt.code)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestRawClients(t *testing.T) {
	_, addr := startFake(t)
	c := newClient(t, Config{Address: addr})
	resp, err := c.Events().PublishBatch(testCtx(t), &switchyardv1.PublishBatchRequest{Events: []*pb.CloudEvent{
		{Id: "raw", Source: "/raw", SpecVersion: "1.0", Type: "t"},
	}})
	if err != nil || resp.GetAccepted() != 1 {
		t.Fatalf("raw PublishBatch = %v, %v", resp, err)
	}
	if _, err := c.Triggers().UpdateTrigger(testCtx(t), &switchyardv1.UpdateTriggerRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("raw UpdateTrigger = %v", err)
	}
	// The fake has no DeadLetterService; the raw error is returned untouched.
	if _, err := c.DeadLetters().GetDeadLetterStats(testCtx(t), &switchyardv1.GetDeadLetterStatsRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("raw GetDeadLetterStats = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(testCtx(t), testEvent("closed", nil)); status.Code(err) != codes.Canceled {
		t.Errorf("Publish after Close = %v, want CANCELED", err)
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("random"), false},
		{context.Canceled, false},
		{status.Error(codes.Canceled, "x"), false},
		{status.Error(codes.Unavailable, "x"), true},
		{status.Error(codes.ResourceExhausted, "x"), true},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9 vs. 8)"), false},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (9 vs. 8)"), false},
		{status.Error(codes.DeadlineExceeded, "x"), true},
		{status.Error(codes.Aborted, "x"), true},
		{status.Error(codes.InvalidArgument, "x"), false},
		{status.Error(codes.NotFound, "x"), false},
		{status.Error(codes.Internal, "x"), false},
		{&PushbackError{}, true},
		{fmt.Errorf("wrapped: %w", &PushbackError{Err: status.Error(codes.ResourceExhausted, "x")}), true},
		{fmt.Errorf("wrapped: %w", ErrUnavailable), true},
		{&InvalidEventError{Err: status.Error(codes.InvalidArgument, "x")}, false},
		{&InvalidTriggerError{}, false},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// The client's connection has fixed flow-control windows: with gRPC's
// default BDP estimation it would start at 64 KiB and ping the server after
// nearly every answer below saturation, which the server must read and
// answer.
func TestClientWindows(t *testing.T) {
	got := testenv.ClientH2Settings(t, func(addr string) {
		c, err := New(Config{Address: addr, Timeout: 2 * time.Second})
		if err != nil {
			return // ClientH2Settings fails: nothing connects
		}
		defer c.Close()
		ev := event.New()
		ev.SetID("1")
		ev.SetSource("/test")
		ev.SetType("t")
		_ = c.Publish(context.Background(), ev)
	})
	if v := got[http2.SettingInitialWindowSize]; v != streamWindow {
		t.Errorf("INITIAL_WINDOW_SIZE %d, want %d", v, streamWindow)
	}
}
