package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/sdk/function"
	"github.com/switchyard-io/switchyard/server"
)

// arrivals records when a function got each event, per trigger.
type arrivals struct {
	mu  sync.Mutex
	got map[string]time.Time // trigger/id → first arrival
}

func (a *arrivals) handler() function.Handler {
	return func(ctx context.Context, ev event.Event) (function.Result, error) {
		info, _ := function.FromContext(ctx)
		a.mu.Lock()
		defer a.mu.Unlock()
		k := info.Trigger + "/" + ev.ID()
		if _, ok := a.got[k]; !ok {
			a.got[k] = time.Now()
		}
		return function.Result{}, nil
	}
}

func (a *arrivals) at(key string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.got[key]
	return t, ok
}

// Events asking for later delivery (a duration, an RFC 3339 time, a
// CloudEvents timestamp) reach every trigger they match no earlier than
// asked and within a second after, on the direct path (one trigger) and
// through the ingest log (two triggers); trigger stats count them DELAYED
// (not as retries) while they wait, and an event published after them
// without the extension is not held up.
func TestDeliverAfterArrivesOnTime(t *testing.T) {
	testenv.Each(t, func(t *testing.T, b testenv.Backend) {
		a := &arrivals{got: map[string]time.Time{}}
		addr := startFunction(t, a.handler())
		e := startServer(t, b, nil)
		e.apply(t, fmt.Sprintf(`
name: solo
filter: {attributes: {type: later.solo}}
target: {grpc: %q}
---
name: left
filter: {attributes: {type: later.both}}
target: {grpc: %q}
---
name: right
filter: {attributes: {type: later.both}}
target: {grpc: %q}
`, addr, addr, addr))
		ctx := context.Background()
		api := e.client.Events()
		pub := func(id, typ string, v *pb.CloudEventAttributeValue) time.Time {
			ev := &pb.CloudEvent{Id: id, Source: "/later", SpecVersion: "1.0", Type: typ}
			if v != nil {
				ev.Attributes = map[string]*pb.CloudEventAttributeValue{router.DeliverAfterExtension: v}
			}
			before := time.Now()
			_, err := api.Publish(ctx, &switchyardv1.PublishRequest{Event: ev})
			require.NoError(t, err)
			return before
		}
		str := func(s string) *pb.CloudEventAttributeValue { return ceString(s) }
		start := time.Now()
		dueTime := start.Add(2500 * time.Millisecond).UTC().Truncate(time.Millisecond)
		wants := map[string]time.Time{}
		wants["solo/d"] = pub("d", "later.solo", str("1500ms")).Add(1500 * time.Millisecond)
		wants["solo/t"] = dueTime
		pub("t", "later.solo", str(dueTime.Format(time.RFC3339Nano)))
		wants["left/b"] = pub("b", "later.both", str("2s")).Add(2 * time.Second)
		wants["right/b"] = wants["left/b"]
		ts := start.Add(time.Second).UTC().Truncate(time.Millisecond)
		wants["solo/ts"] = ts
		pub("ts", "later.solo", &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(ts)}})
		pub("now", "later.solo", nil)
		pub("past", "later.solo", str(start.Add(-time.Hour).Format(time.RFC3339)))

		st := stats(t, e.client, "solo")
		if time.Since(start) < 900*time.Millisecond { // nothing due yet
			require.EqualValues(t, 3, st.GetDelayed(), "three wait for their time")
			require.Zero(t, st.GetRetriesScheduled(), "they are not retries")
			require.EqualValues(t, 5, st.GetEnqueued())
		}
		testenv.Eventually(t, 5*time.Second, func() bool {
			_, now := a.at("solo/now")
			_, past := a.at("solo/past")
			return now && past
		}, "the events without a (future) deliverafter are delivered at once")
		for k := range wants {
			testenv.Eventually(t, 10*time.Second, func() bool { _, ok := a.at(k); return ok }, "%s delivered", k)
		}
		for k, want := range wants {
			got, _ := a.at(k)
			require.False(t, got.Before(want), "%s arrived %s early", k, want.Sub(got))
			require.Less(t, got.Sub(want), time.Second, "%s arrived %s late", k, got.Sub(want))
		}
		for _, n := range []string{"solo", "left", "right"} {
			testenv.Eventually(t, 5*time.Second, func() bool {
				st := stats(t, e.client, n)
				return st.GetDelayed()+st.GetUndelivered() == 0
			}, "%s: nothing left waiting (acks recorded)", n)
		}
	})
}

// A deliverafter that does not parse, is negative, or asks beyond
// max_deliver_after is refused with the attribute named (problem JSON over
// HTTP, a BadRequest field over gRPC), and nothing of the call is queued.
func TestDeliverAfterRefused(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), func(c *server.Config) { c.Router.MaxDeliverAfter = time.Hour })
	e.apply(t, `{"name":"all","target":{"grpc":"127.0.0.1:1"}}`)
	bad := map[string]string{
		"not a time":     `"tomorrow"`,
		"negative":       `"-5s"`,
		"beyond the max": `"2h"`,
		"far time":       fmt.Sprintf("%q", time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339)),
		"a number":       `5`,
	}
	for name, v := range bad {
		t.Run("http/"+name, func(t *testing.T) {
			body := `{"specversion":"1.0","id":"1","source":"/s","type":"t","deliverafter":` + v + `}`
			code, prob := e.post(t, "application/cloudevents+json", nil, []byte(body))
			require.Equal(t, 400, code, "%v", prob)
			js, _ := json.Marshal(prob)
			require.Contains(t, string(js), `"attribute":"deliverafter"`)
			if strings.Contains(name, "max") || strings.Contains(name, "far") {
				require.Contains(t, string(js), "max_deliver_after")
			}
		})
	}
	ev := validEvent("g")
	ev.Attributes = map[string]*pb.CloudEventAttributeValue{router.DeliverAfterExtension: ceString("soon")}
	_, err := e.client.Events().PublishBatch(context.Background(), &switchyardv1.PublishBatchRequest{Events: []*pb.CloudEvent{validEvent("ok"), ev}})
	require.Equal(t, []string{`events[1].attributes["deliverafter"]`}, violations(t, err))
	st := stats(t, e.client, "all")
	require.Zero(t, st.GetEnqueued(), "nothing of a refused call is queued")
}

// A pull consumer gets a delayed event no earlier than asked and within a
// second after, the stream open all along.
func TestDeliverAfterPull(t *testing.T) {
	e := startServer(t, testenv.Embedded(t), nil)
	e.apply(t, pullTrigger("later-pull", "later.pull", "timeout: 1m"))
	p := openPull(t, e.client, "later-pull", 10)
	ev := &pb.CloudEvent{Id: "lp", Source: "/later", SpecVersion: "1.0", Type: "later.pull",
		Attributes: map[string]*pb.CloudEventAttributeValue{router.DeliverAfterExtension: ceString("1200ms")}}
	want := time.Now().Add(1200 * time.Millisecond)
	_, err := e.client.Events().Publish(context.Background(), &switchyardv1.PublishRequest{Event: ev})
	require.NoError(t, err)
	got := p.next(10 * time.Second)
	at := time.Now()
	require.Equal(t, "lp", got.GetEvent().GetId())
	require.Equal(t, "1200ms", got.GetEvent().GetAttributes()[router.DeliverAfterExtension].GetCeString(), "the attribute is kept")
	require.False(t, at.Before(want), "arrived %s early", want.Sub(at))
	require.Less(t, at.Sub(want), time.Second)
}
