package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

// metricValue reads a gauge's or a counter's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func sizedEvent(id string, data int) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/limits", SpecVersion: "1.0", Type: "t",
		Data: &pb.CloudEvent_BinaryData{BinaryData: make([]byte, data)}}
}

// TestGRPCMessageSizeLimit: the gRPC message bound follows max_event_bytes
// and max_batch_bytes; a larger message is refused with RESOURCE_EXHAUSTED
// naming the bound, before anything is decoded.
func TestGRPCMessageSizeLimit(t *testing.T) {
	s := startListeners(t, func(c *Config) { c.Limits.MaxEventBytes, c.Limits.MaxBatchBytes = 1024, 4096 })
	api := switchyardv1.NewEventServiceClient(grpcConn(t, s.GRPCAddr(), insecure.NewCredentials()))
	bound := 4096 + grpcEnvelope
	require.Equal(t, bound, grpcMaxMessageBytes(s.cfg.Limits))

	ok := []*pb.CloudEvent{sizedEvent("1", 900), sizedEvent("2", 900), sizedEvent("3", 900)}
	res, err := api.PublishBatch(context.Background(), &switchyardv1.PublishBatchRequest{Events: ok})
	require.NoError(t, err)
	require.EqualValues(t, 3, res.GetAccepted())

	var big []*pb.CloudEvent
	for i := range 80 {
		big = append(big, sizedEvent(strconv.Itoa(i), 900))
	}
	_, err = api.PublishBatch(context.Background(), &switchyardv1.PublishBatchRequest{Events: big})
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
	require.Contains(t, st.Message(), strconv.Itoa(bound), "the message names the bound")

	// The SDK takes it for invalid input, not for a pushback to retry.
	c, err := sdk.New(sdk.Config{Address: s.GRPCAddr()})
	require.NoError(t, err)
	defer c.Close()
	evs := make([]event.Event, 80)
	for i := range evs {
		evs[i] = event.New()
		evs[i].SetID(strconv.Itoa(i))
		evs[i].SetSource("/limits")
		evs[i].SetType("t")
		require.NoError(t, evs[i].SetData("application/octet-stream", make([]byte, 900)))
	}
	err = c.PublishBatch(context.Background(), evs)
	var ie *sdk.InvalidEventError
	require.ErrorAs(t, err, &ie)
	require.False(t, sdk.IsRetryable(err))

	// Within the message bound, an event over max_event_bytes is refused
	// naming it (INVALID_ARGUMENT: not worth a retry).
	_, err = api.Publish(context.Background(), &switchyardv1.PublishRequest{Event: sizedEvent("x", 2000)})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "limit 1024")

	// With events larger than batches, the event bound decides.
	s2 := startListeners(t, func(c *Config) { c.Limits.MaxEventBytes, c.Limits.MaxBatchBytes = 200_000, 4096 })
	require.Equal(t, 200_000+grpcEnvelope, grpcMaxMessageBytes(s2.cfg.Limits))
	_, err = switchyardv1.NewEventServiceClient(grpcConn(t, s2.GRPCAddr(), insecure.NewCredentials())).
		Publish(context.Background(), &switchyardv1.PublishRequest{Event: sizedEvent("y", 150_000)})
	require.NoError(t, err)
}

// TestGRPCConnectionLimit: past max_connections a new gRPC connection is
// refused at once (UNAVAILABLE for its call), those open go on working,
// and a slot freed is taken by the next connection.
func TestGRPCConnectionLimit(t *testing.T) {
	s := startListeners(t, func(c *Config) { c.Transport.MaxConnections = 2 })
	c1 := grpcConn(t, s.GRPCAddr(), insecure.NewCredentials())
	c2 := grpcConn(t, s.GRPCAddr(), insecure.NewCredentials())
	_, err := grpcPublish(c1)
	require.NoError(t, err)
	_, err = grpcPublish(c2)
	require.NoError(t, err)

	refused := s.gl.(*limitedListener).refused
	_, err = grpcPublish(grpcConn(t, s.GRPCAddr(), insecure.NewCredentials()))
	require.Equal(t, codes.Unavailable, status.Code(err), "a third connection: %v", err)
	require.GreaterOrEqual(t, metricValue(t, refused), 1.0)
	require.Equal(t, 2.0, metricValue(t, s.gl.(*limitedListener).open))

	_, err = grpcPublish(c1)
	require.NoError(t, err, "an open connection is not affected")
	_, err = grpcPublish(c2)
	require.NoError(t, err)

	require.NoError(t, c1.Close())
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := grpcPublish(grpcConn(t, s.GRPCAddr(), insecure.NewCredentials()))
		return err == nil
	}, "a new connection once one closed")
}

// rawGet sends a keep-alive GET on c and reads the answer's status.
func rawGet(c net.Conn, r *bufio.Reader, path string) (int, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// TestHTTPConnectionLimit: the same on the HTTP listener, seen from raw
// connections: the one past the limit is reset before any answer.
func TestHTTPConnectionLimit(t *testing.T) {
	s := startListeners(t, func(c *Config) { c.Transport.MaxConnections = 2 })
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", s.HTTPAddr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	c1, r1 := dial()
	c2, r2 := dial()
	for _, c := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		st, err := rawGet(c.c, c.r, "/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, st)
	}
	// The reset may come before the connect returns, or at the first read.
	c3, err := net.Dial("tcp", s.HTTPAddr())
	if err == nil {
		defer c3.Close()
		_ = c3.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = rawGet(c3, bufio.NewReader(c3), "/healthz")
	}
	require.Error(t, err, "the connection past the limit gets no answer")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "refused at once, not left waiting: %v", err)
	require.GreaterOrEqual(t, metricValue(t, s.hl.(*limitedListener).refused), 1.0)

	st, err := rawGet(c1, r1, "/healthz")
	require.NoError(t, err, "an open connection is not affected")
	require.Equal(t, http.StatusOK, st)
}

// TestHTTPBodyTimeout: a body that does not arrive within http_body_timeout
// is answered 408 (problem JSON) and its connection closed; a request whose
// body arrived is not cut off by that deadline, nor is the next request on
// its connection.
func TestHTTPBodyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startListeners(t, func(c *Config) { c.Transport.BodyTimeout = timeout })

	c, err := net.Dial("tcp", s.HTTPAddr())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = fmt.Fprintf(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n[{\"spec", "application/cloudevents-batch+json")
	require.NoError(t, err)
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "/problems/body-timeout")
	require.Contains(t, string(body), "http_body_timeout")
	require.GreaterOrEqual(t, time.Since(start), timeout)
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the connection is closed")

	// A complete request, then another on the same connection after more
	// than the body timeout: the deadline ended with the first body.
	c2, err := net.Dial("tcp", s.HTTPAddr())
	require.NoError(t, err)
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	r2 := bufio.NewReader(c2)
	post := func() int {
		_, err := fmt.Fprintf(c2, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: %d\r\n\r\n%s", len(structuredEvent), structuredEvent)
		require.NoError(t, err)
		resp, err := http.ReadResponse(r2, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusAccepted, post())
	time.Sleep(2 * timeout) // idle past the body timeout: what is under test
	require.Equal(t, http.StatusAccepted, post())
}

// TestHTTPBatchCountLimit: the batch count bound is the router's
// MaxBatchEvents, enforced while decoding (413 naming it).
func TestHTTPBatchCountLimit(t *testing.T) {
	s := startListeners(t, func(c *Config) { c.Router.MaxBatchEvents = 3 })
	require.Equal(t, 3, s.cfg.Limits.MaxBatchEvents)
	batch := func(n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"/s","type":"t"}`, i)
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	post := func(body string) (int, string) {
		resp, err := http.Post("http://"+s.HTTPAddr()+"/events", "application/cloudevents-batch+json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	st, body := post(batch(3))
	require.Equal(t, http.StatusAccepted, st, body)
	st, body = post(batch(4))
	require.Equal(t, http.StatusRequestEntityTooLarge, st, body)
	require.Contains(t, body, "a batch holds at most 3 events")
}

// TestGRPCTransportSettings reads what the gRPC listener tells an HTTP/2
// client (its SETTINGS: concurrent streams, header list size, window) and checks
// the keepalive enforcement: a client that pings too often is sent GOAWAY
// ENHANCE_YOUR_CALM "too_many_pings".
func TestGRPCTransportSettings(t *testing.T) {
	s := startListeners(t, func(c *Config) { c.Transport.MaxConcurrentStreams = 7 })
	c, err := net.Dial("tcp", s.GRPCAddr())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(c, c)
	require.NoError(t, fr.WriteSettings())

	settings := map[http2.SettingID]uint32{}
	var goAway *http2.GoAwayFrame
	pings := 0
	for goAway == nil {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "read frame (pings sent: %d)", pings)
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = f.ForeachSetting(func(s http2.Setting) error { settings[s.ID] = s.Val; return nil })
			require.NoError(t, fr.WriteSettingsAck())
			// Ping without pause: the policy allows one per 10 s.
			for range 5 {
				require.NoError(t, fr.WritePing(false, [8]byte{byte(pings)}))
				pings++
			}
		case *http2.GoAwayFrame:
			goAway = f
		}
	}
	require.EqualValues(t, 7, settings[http2.SettingMaxConcurrentStreams])
	require.EqualValues(t, grpcMaxHeaderListSize, settings[http2.SettingMaxHeaderListSize])
	// A fixed window, not gRPC's 64 KiB start of a window sized by BDP
	// estimation (which pings after nearly every message at low rates).
	require.EqualValues(t, grpcStreamWindow, settings[http2.SettingInitialWindowSize])
	require.Equal(t, http2.ErrCodeEnhanceYourCalm, goAway.ErrCode)
	require.Equal(t, "too_many_pings", string(goAway.DebugData()))
}
