package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

// minPushbackSleep is the least a publisher waits after a pushback.
const minPushbackSleep = 5 * time.Millisecond

// pubStats counts what publishers did.
type pubStats struct {
	accepted  atomic.Int64
	pushbacks atomic.Int64
	errors    atomic.Int64
	firstErr  atomic.Pointer[string]
	// owed, when set, returns the deliveries still owed for accepted
	// events; closed-loop publishers pause while it exceeds window.
	owed   func() int64
	window int64
}

// await pauses a closed-loop publisher while too many deliveries are owed.
func (s *pubStats) await(ctx context.Context) {
	if s.owed == nil || s.window <= 0 {
		return
	}
	for s.owed() > s.window && ctx.Err() == nil {
		sleepCtx(ctx, time.Millisecond)
	}
}

func (s *pubStats) fail(err error) {
	s.errors.Add(1)
	msg := err.Error()
	s.firstErr.CompareAndSwap(nil, &msg)
}

func (s *pubStats) firstError() string {
	if p := s.firstErr.Load(); p != nil {
		return *p
	}
	return ""
}

// pushbackOf returns the SDK's pushback error for a RESOURCE_EXHAUSTED answer
// of the generated client (which the benchmark uses directly to send
// pre-built protos), decoded as the SDK does; nil for any other error.
func pushbackOf(err error) *sdk.PushbackError {
	var pe *sdk.PushbackError
	if errors.As(err, &pe) {
		return pe
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return nil
	}
	pe = &sdk.PushbackError{Err: err}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			pe.RetryAfter = max(d.GetRetryDelay().AsDuration(), 0)
		case *errdetails.ErrorInfo:
			if pe.Trigger == "" {
				pe.Trigger = d.GetMetadata()["trigger"]
			}
		}
	}
	return pe
}

// sleepCtx sleeps d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// newEvent builds an event of type typ carrying the benchmark's payload.
func (e *env) newEvent(typ string) *pb.CloudEvent {
	return &pb.CloudEvent{
		SpecVersion: "1.0",
		Source:      "/switchyard/bench",
		Type:        typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/octet-stream"}},
		},
		Data: &pb.CloudEvent_BinaryData{BinaryData: e.payload},
	}
}

// batchPublishers starts --concurrency closed-loop publishers of typ, each
// looping on PublishBatch with a pre-built batch (only the ids change).
func (e *env) batchPublishers(ctx context.Context, typ string, st *pubStats) *sync.WaitGroup {
	var wg sync.WaitGroup
	for p := range e.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.batchPublisher(ctx, typ, p, st)
		}()
	}
	return &wg
}

func (e *env) batchPublisher(ctx context.Context, typ string, p int, st *pubStats) {
	req := &switchyardv1.PublishBatchRequest{Events: make([]*pb.CloudEvent, e.opt.Batch)}
	for i := range req.Events {
		req.Events[i] = e.newEvent(typ)
	}
	idp := []byte(e.runID + "-g" + strconv.Itoa(p) + "-")
	buf := make([]byte, 0, 40)
	var seq uint64
	for ctx.Err() == nil {
		st.await(ctx)
		for _, ev := range req.Events {
			seq++
			buf = strconv.AppendUint(append(buf[:0], idp...), seq, 10)
			ev.Id = string(buf)
		}
		resp, err := e.events.PublishBatch(ctx, req)
		switch {
		case err == nil:
			st.accepted.Add(int64(resp.GetAccepted()))
		case ctx.Err() != nil:
			return
		default:
			if pe := pushbackOf(err); pe != nil {
				st.pushbacks.Add(1)
				sleepCtx(ctx, max(pe.RetryAfter, minPushbackSleep))
				continue
			}
			st.fail(err)
			sleepCtx(ctx, 10*time.Millisecond)
		}
	}
}

// httpPublishers starts --http-clients closed-loop publishers, each POSTing
// one structured-mode event at a time on a keep-alive connection.
func (e *env) httpPublishers(ctx context.Context, typ string, st *pubStats) *sync.WaitGroup {
	var wg sync.WaitGroup
	scheme := e.tgt.scheme
	if scheme == "" {
		scheme = "http"
	}
	url := scheme + "://" + e.tgt.httpAddr + "/events"
	head := []byte(`{"specversion":"1.0","type":"` + typ + `","source":"/switchyard/bench","datacontenttype":"text/plain","data":"` +
		string(e.payload) + `","id":"` + e.runID + "-h")
	for w := range e.opt.HTTPClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.httpPublisher(ctx, url, head, w, st)
		}()
	}
	return &wg
}

func (e *env) httpPublisher(ctx context.Context, url string, head []byte, w int, st *pubStats) {
	buf := append([]byte(nil), head...)
	buf = strconv.AppendInt(buf, int64(w), 10)
	buf = append(buf, '-')
	idEnd := len(buf)
	var seq uint64
	for ctx.Err() == nil {
		st.await(ctx)
		seq++
		buf = append(strconv.AppendUint(buf[:idEnd], seq, 10), `"}`...)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
		if err != nil {
			st.fail(err)
			return
		}
		req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
		if e.token != "" {
			req.Header.Set("Authorization", "Bearer "+e.token)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.fail(err)
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			st.accepted.Add(1)
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			st.pushbacks.Add(1)
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			sleepCtx(ctx, max(time.Duration(ra)*time.Second, minPushbackSleep))
		default:
			st.fail(errors.New("HTTP " + strconv.Itoa(resp.StatusCode) + ": " + string(bytes.TrimSpace(body))))
			sleepCtx(ctx, 10*time.Millisecond)
		}
	}
}

// openLoop publishes events of typ at a fixed rate with gRPC Publish: event i
// is scheduled at start + i/rate and carries that time in the sentns
// extension, so a late send (a busy worker, a slow server) shows as latency
// instead of lowering the rate (no coordinated omission). Publish latencies
// (scheduled time → answer) of events scheduled at or after since go to ack.
// It returns once every event was sent.
func (e *env) openLoop(ctx context.Context, typ string, rate int, start time.Time, dur time.Duration, workers int, st *pubStats, ack *Histogram, since time.Time) (sent int64) {
	n := int64(dur.Seconds() * float64(rate))
	ch := make(chan int64, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.openLoopWorker(ctx, typ, w, ch, st, ack, since.UnixNano())
		}()
	}
	interval := float64(time.Second) / float64(rate)
	for i := range n {
		due := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		ch <- due.UnixNano()
		sent++
	}
	close(ch)
	wg.Wait()
	return sent
}

func (e *env) openLoopWorker(ctx context.Context, typ string, w int, ch <-chan int64, st *pubStats, ack *Histogram, since int64) {
	ev := e.newEvent(typ)
	sent := &pb.CloudEventAttributeValue_CeString{}
	ev.Attributes[SentExtension] = &pb.CloudEventAttributeValue{Attr: sent}
	req := &switchyardv1.PublishRequest{Event: ev}
	idp := []byte(e.runID + "-o" + strconv.Itoa(w) + "-")
	buf := make([]byte, 0, 40)
	var seq uint64
	for due := range ch {
		if ctx.Err() != nil {
			continue // drain
		}
		seq++
		buf = strconv.AppendUint(append(buf[:0], idp...), seq, 10)
		ev.Id = string(buf)
		sent.CeString = strconv.FormatInt(due, 10)
		_, err := e.events.Publish(ctx, req)
		switch {
		case err == nil:
			st.accepted.Add(1)
			if ack != nil && due >= since {
				ack.Record(time.Duration(time.Now().UnixNano() - due))
			}
		case ctx.Err() != nil:
		case pushbackOf(err) != nil:
			st.pushbacks.Add(1) // open loop: the event is lost, not retried
		default:
			st.fail(err)
		}
	}
}
