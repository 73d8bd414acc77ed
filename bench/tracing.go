package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard-io/switchyard/internal/otlpsink"
	"github.com/switchyard-io/switchyard/sdk"
)

// TracingResult compares the same load on the untraced server and on a
// second child server started with tracing on, exporting every span (the
// default parent-based always-on sampler; publishers send no trace
// context, so every publish is sampled) over OTLP/gRPC to a receiver in
// this process that counts them and keeps nothing.
type TracingResult struct {
	// Off and On are single's gRPC PublishBatch run on each server.
	Off *ThroughputResult `json:"off"`
	On  *ThroughputResult `json:"on"`
	// HTTPOff and HTTPOn are single/http's run (one event per POST: the
	// most spans per event) on each server.
	HTTPOff *ThroughputResult `json:"http_off,omitempty"`
	HTTPOn  *ThroughputResult `json:"http_on,omitempty"`
	// Spans is what the receiver got from the traced server, per event
	// delivered over both of its runs.
	Spans         int64   `json:"spans"`
	SpansPerEvent float64 `json:"spans_per_event"`
	// ServerCostUSPerEvent is the traced server's CPU per delivered event
	// minus the untraced one's, per run: what tracing everything costs.
	ServerCostUSPerEvent     float64 `json:"server_cost_us_per_event"`
	HTTPServerCostUSPerEvent float64 `json:"http_server_cost_us_per_event,omitempty"`
}

// tracing runs single's gRPC and HTTP loads against the untraced server,
// then against a traced one on a key prefix of its own.
func (e *env) tracing(ctx context.Context) error {
	if e.tgt.proc == nil {
		return errors.New("needs a child server (not --server): it starts a traced one beside it")
	}
	res := &TracingResult{}
	e.rep.Scenarios.Tracing = res
	res.Off, res.HTTPOff = e.tracingRuns(ctx, "off")
	if ctx.Err() != nil {
		return ctx.Err()
	}

	recv, err := otlpsink.Start(false)
	if err != nil {
		return fmt.Errorf("OTLP receiver: %w", err)
	}
	defer recv.Close()
	prefix := e.prefix + "-traced"
	defer e.cleanupPrefix(prefix)
	traced, err := startChild(ctx, e.exe, e.childArgs(prefix), []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + recv.GRPCAddr(),
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
	}, e.opt.Log)
	if err != nil {
		return fmt.Errorf("traced server: %w", err)
	}
	client, err := sdk.New(sdk.Config{Address: traced.grpcAddr, Timeout: 30 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}})
	if err != nil {
		traced.stop(25 * time.Second)
		return err
	}
	// The scenarios' helpers talk to e.tgt and e.client: point them at the
	// traced server for its runs.
	savedTgt, savedClient := e.tgt, e.client
	e.tgt, e.client, e.events = traced, client, client.Events()
	e.logf("traced server pid %d grpc %s", traced.pid(), traced.grpcAddr)
	res.On, res.HTTPOn = e.tracingRuns(ctx, "on")
	_ = client.Close()
	traced.stop(25 * time.Second) // flushes its spans
	e.tgt, e.client, e.events = savedTgt, savedClient, savedClient.Events()

	res.Spans = recv.Count()
	if n := delivered(res.On) + delivered(res.HTTPOn); n > 0 {
		res.SpansPerEvent = round3(float64(res.Spans) / float64(n))
	}
	if res.On != nil && res.Off != nil {
		res.ServerCostUSPerEvent = round3(res.On.Usage.ServerUSPerOp - res.Off.Usage.ServerUSPerOp)
		e.printf("%-12s gRPC batches: %.0f → %.0f delivered/s; server CPU %.1f → %.1f µs/event (+%.1f µs with every event traced)",
			Tracing, res.Off.DeliveredPerS, res.On.DeliveredPerS, res.Off.Usage.ServerUSPerOp, res.On.Usage.ServerUSPerOp, res.ServerCostUSPerEvent)
	}
	if res.HTTPOn != nil && res.HTTPOff != nil {
		res.HTTPServerCostUSPerEvent = round3(res.HTTPOn.Usage.ServerUSPerOp - res.HTTPOff.Usage.ServerUSPerOp)
		e.printf("%-12s HTTP single events: %.0f → %.0f delivered/s; server CPU %.1f → %.1f µs/event (+%.1f µs)",
			Tracing, res.HTTPOff.DeliveredPerS, res.HTTPOn.DeliveredPerS, res.HTTPOff.Usage.ServerUSPerOp, res.HTTPOn.Usage.ServerUSPerOp, res.HTTPServerCostUSPerEvent)
	}
	e.printf("%-12s %d spans exported (%.2f per delivered event)", Tracing, res.Spans, res.SpansPerEvent)
	return ctx.Err()
}

func delivered(r *ThroughputResult) int64 {
	if r == nil {
		return 0
	}
	return r.Delivered
}

// tracingRuns measures single's gRPC and HTTP loads on the current server.
func (e *env) tracingRuns(ctx context.Context, label string) (grpcRun, httpRun *ThroughputResult) {
	name, typ := e.triggerName("tracing-"+label), e.eventType("tracing-"+label)
	if err := e.applyTrigger(ctx, name, typ, e.sinkA.addr, 128, 0); err != nil {
		e.fail(Tracing+"/"+label, err)
		return nil, nil
	}
	grpcRun = e.measure(ctx, []string{name}, e.grpcPublishers(typ))
	e.printThroughput(Tracing+"/"+label, grpcRun)
	if ctx.Err() == nil && e.tgt.httpAddr != "" {
		httpRun = e.measure(ctx, []string{name}, func(ctx context.Context, st *pubStats) *sync.WaitGroup { return e.httpPublishers(ctx, typ, st) })
		httpRun.Publishers, httpRun.Batch = e.opt.HTTPClients, 1
		e.printThroughput(Tracing+"/"+label+"/http", httpRun)
	}
	e.deleteTriggers(Tracing+"/"+label, name)
	return grpcRun, httpRun
}
