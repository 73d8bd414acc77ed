package all_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	_ "github.com/switchyard-io/switchyard/connectors/all"
	"github.com/switchyard-io/switchyard/internal/dbtest"
	"github.com/switchyard-io/switchyard/internal/testenv"
	functionv1 "github.com/switchyard-io/switchyard/proto/switchyard/function/v1"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/trigger"
	"github.com/switchyard-io/switchyard/sdk"
	"github.com/switchyard-io/switchyard/server"
)

// The private database servers (logical replication, binlog), started on
// first use and stopped after the tests.
var (
	pgOnce, myOnce sync.Once
	pg             *dbtest.Postgres
	my             *dbtest.MariaDB
	pgErr, myErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		_ = pg.Stop()
	}
	if my != nil {
		_ = my.Stop()
	}
	os.Exit(code)
}

func privatePostgres(t *testing.T) *dbtest.Postgres {
	t.Helper()
	pgOnce.Do(func() { pg, pgErr = dbtest.StartPostgres() })
	require.NoError(t, pgErr, "start a private PostgreSQL with wal_level=logical")
	return pg
}

func privateMariaDB(t *testing.T) *dbtest.MariaDB {
	t.Helper()
	myOnce.Do(func() { my, myErr = dbtest.StartMariaDB() })
	require.NoError(t, myErr, "start a private MariaDB with the binary log")
	return my
}

func suffix() string { return strconv.FormatUint(rand.Uint64()>>16, 36) }

// instance is one switchyard server on the embedded store.
type instance struct {
	srv    *server.Server
	client *sdk.Client
	http   string
}

func startServer(t *testing.T, tweak func(*server.Config)) *instance {
	t.Helper()
	cfg := server.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		Router:               router.Config{SweepInterval: 100 * time.Millisecond, BreakerCooldown: 100 * time.Millisecond, BreakerMaxCooldown: 500 * time.Millisecond},
		AllowVolatileSources: true,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &instance{srv: s, client: c, http: "http://" + s.HTTPAddr()}
}

func (in *instance) apply(t *testing.T, yaml string) {
	t.Helper()
	specs, err := trigger.Parse([]byte(yaml))
	require.NoError(t, err)
	for _, s := range specs {
		_, err := in.client.ApplyTrigger(context.Background(), trigger.ToProto(s))
		require.NoError(t, err)
	}
}

// post publishes ev with POST /events in binary mode.
func (in *instance) post(t *testing.T, ev *pb.CloudEvent) {
	t.Helper()
	h := http.Header{}
	body := cloudevent.WriteBinary(ev, h)
	req, err := http.NewRequest(http.MethodPost, in.http+"/events", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", msg)
}

// waitRunning waits until every source of the instance reads.
func (in *instance) waitRunning(t *testing.T) {
	t.Helper()
	var last string
	testenv.Eventually(t, 30*time.Second, func() bool {
		res, err := in.client.Sources().ListSources(context.Background(), &switchyardv1.ListSourcesRequest{})
		if err != nil || len(res.GetSources()) == 0 {
			return false
		}
		for _, s := range res.GetSources() {
			last = s.GetState() + " " + s.GetLastError()
			if s.GetState() != "running" {
				return false
			}
		}
		return true
	}, "sources running (last: %s)", last)
}

// deadLetters returns the trigger's dead letters.
func (in *instance) deadLetters(t *testing.T, trig string) []*switchyardv1.DeadLetter {
	t.Helper()
	res, err := in.client.DeadLetters().ListDeadLetters(context.Background(), &switchyardv1.ListDeadLettersRequest{Trigger: trig})
	require.NoError(t, err)
	return res.GetDeadLetters()
}

// sink is a function that keeps every event it is invoked with, exactly
// as it arrived (the protobuf CloudEvent of the request).
type sink struct {
	functionv1.UnimplementedFunctionServiceServer
	mu     sync.Mutex
	events map[string]*pb.CloudEvent
}

func (s *sink) Invoke(_ context.Context, req *functionv1.InvokeRequest) (*functionv1.InvokeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[req.GetEvent().GetId()] = req.GetEvent()
	return &functionv1.InvokeResponse{Outcome: functionv1.Outcome_OUTCOME_ACK}, nil
}

func (s *sink) get(id string) (*pb.CloudEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, ok := s.events[id]
	return ev, ok
}

func (s *sink) all() []*pb.CloudEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pb.CloudEvent, 0, len(s.events))
	for _, ev := range s.events {
		out = append(out, ev)
	}
	return out
}

func startSink(t *testing.T) (*sink, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &sink{events: map[string]*pb.CloudEvent{}}
	g := grpc.NewServer()
	functionv1.RegisterFunctionServiceServer(g, s)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); <-done })
	return s, lis.Addr().String()
}

// reader is a second server running the source of the broker's kind, with
// a trigger that hands every event it reads to a sink.
func reader(t *testing.T, kind string, fields map[string]any) (*instance, *sink) {
	t.Helper()
	s, addr := startSink(t)
	in := startServer(t, func(c *server.Config) {
		c.Sources = []connectors.SourceConfig{{Name: "back", Kind: kind, Fields: fields}}
	})
	in.apply(t, fmt.Sprintf("name: back\ntarget: {grpc: %q}\n", addr))
	in.waitRunning(t)
	return in, s
}

// roundTripEvents are the events every round trip publishes: JSON data with
// whitespace and non-ASCII text, a subject that needs escaping in headers,
// a time with nanoseconds and extensions; binary data; no data at all.
func roundTripEvents(prefix string) []*pb.CloudEvent {
	ts := timestamppb.New(time.Date(2026, 12, 6, 10, 11, 12, 123456789, time.UTC))
	str := cloudevent.StringValue
	return []*pb.CloudEvent{
		{Id: prefix + "-json", Source: "/shop/eu", SpecVersion: "1.0", Type: "com.example.roundtrip",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"subject":         str("eu 42 ü \"quoted\" 100%"),
				"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: ts}},
				"datacontenttype": str("application/json"),
				"tenant":          str("acme"),
				"partitionkey":    str("order-42"),
				"comexampleseq":   str("7"),
			},
			Data: &pb.CloudEvent_TextData{TextData: "{\"total\": 150,\n  \"note\": \"ü €\" }"}},
		{Id: prefix + "-binary", Source: "/shop/eu", SpecVersion: "1.0", Type: "com.example.roundtrip",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"datacontenttype": str("application/octet-stream"),
				"dataschema":      {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/schemas/blob"}},
			},
			Data: &pb.CloudEvent_BinaryData{BinaryData: []byte{0, 1, 2, 0xff, 0xfe, '\n', 0x80}}},
		{Id: prefix + "-empty", Source: "urn:shop:us", SpecVersion: "1.0", Type: "com.example.roundtrip"},
	}
}

// canon renders an event as its attributes in canonical string form and
// its data (base64), for comparison across bindings.
func canon(ev *pb.CloudEvent) map[string]string {
	out := map[string]string{"id": ev.GetId(), "source": ev.GetSource(), "specversion": ev.GetSpecVersion(), "type": ev.GetType()}
	for name, v := range ev.GetAttributes() {
		s, _ := cloudevent.AttributeValueString(v)
		out[name] = s
	}
	if d := cloudevent.Data(ev); len(d) > 0 {
		out["(data)"] = base64.StdEncoding.EncodeToString(d)
	}
	return out
}

// requireSame checks that every event came back with every attribute and
// its data byte for byte.
func requireSame(t *testing.T, sent []*pb.CloudEvent, got func(id string) (map[string]string, bool)) {
	t.Helper()
	for _, ev := range sent {
		var back map[string]string
		testenv.Eventually(t, 30*time.Second, func() bool {
			var ok bool
			back, ok = got(ev.GetId())
			return ok
		}, "event %s read back", ev.GetId())
		require.Equal(t, canon(ev), back, "event %s", ev.GetId())
	}
}

// process is a broker the test runs and stops by pid.
type process struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
}

func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.name, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, io.Discard
	require.NoError(p.t, p.cmd.Start())
}

// kill stops the broker with SIGKILL, as a crash would.
func (p *process) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := dbtest.FreePort()
	require.NoError(t, err)
	return port
}

// secretMap is the server's secrets in a test.
type secretMap map[string]string

func (m secretMap) Lookup(name string) ([]byte, error) {
	v, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no secret %s", name)
	}
	return []byte(v), nil
}
