package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard-io/switchyard/cloudevent"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
)

// fakeEvents is an EventService recording the published events.
type fakeEvents struct {
	switchyardv1.UnimplementedEventServiceServer
	mu        sync.Mutex
	published []*pb.CloudEvent
	err       error
}

func (f *fakeEvents) Publish(_ context.Context, req *switchyardv1.PublishRequest) (*switchyardv1.PublishResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, req.GetEvent())
	if f.err != nil {
		return nil, f.err
	}
	return &switchyardv1.PublishResponse{}, nil
}

func (f *fakeEvents) events() []*pb.CloudEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pb.CloudEvent(nil), f.published...)
}

func TestParseExtensions(t *testing.T) {
	got, err := parseExtensions([]string{"tenant=acme", "empty=", "expr=a=b", "n2=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant": "acme", "empty": "", "expr": "a=b", "n2": "1"}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for in, wantErr := range map[string]string{
		"novalue":       "want name=value",
		"=x":            "empty name",
		"Tenant=x":      "lower-case letters",
		"ten-ant=x":     "lower-case letters",
		"ten_ant=x":     "lower-case letters",
		"subject=x":     "use --subject",
		"type=x":        "use --type",
		"data=x":        "use --data",
		"specversion":   "want name=value",
		"specversion=2": `"specversion" is a core attribute`,
	} {
		_, err := parseExtensions([]string{in})
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseExtensions(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
	if _, err := parseExtensions([]string{"a=1", "a=2"}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestDefaultContentType(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:   "application/json",
		` [1, 2] `:  "application/json",
		`"str"`:     "application/json",
		`42`:        "application/json",
		`hello`:     "text/plain",
		`{"a":`:     "text/plain",
		"":          "text/plain",
		"\xff\xfe1": "application/octet-stream",
	} {
		if got := defaultContentType([]byte(in)); got != want {
			t.Errorf("defaultContentType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPublish(t *testing.T) {
	fake := &fakeEvents{}
	addr := startFake(t, nil, fake)
	binPath := filepath.Join(t.TempDir(), "blob.bin")
	bin := []byte{0xff, 0, 1, 0xfe, '\n'}
	if err := os.WriteFile(binPath, bin, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		check  func(t *testing.T, ev *pb.CloudEvent)
		wantID string
	}{
		{
			name: "json data and everything",
			args: []string{"--id", "ev-1", "--subject", "s/1", "--data", `{"a": [1, 2]}`,
				"--ext", "tenant=acme", "--ext", "region=eu=1", "--time", "2025-01-02T03:04:05.5Z", "--dataschema", "https://example.com/s"},
			wantID: "ev-1",
			check: func(t *testing.T, ev *pb.CloudEvent) {
				attr := func(name string) string { v, _ := cloudevent.Attribute(ev, name); return v }
				if string(cloudevent.Data(ev)) != `{"a": [1, 2]}` || attr("datacontenttype") != "application/json" ||
					attr("subject") != "s/1" || attr("tenant") != "acme" || attr("region") != "eu=1" ||
					attr("time") != "2025-01-02T03:04:05.5Z" || attr("dataschema") != "https://example.com/s" {
					t.Errorf("event %v", ev)
				}
			},
		},
		{
			name: "text data, random id",
			args: []string{"--data", "hello world"},
			check: func(t *testing.T, ev *pb.CloudEvent) {
				if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "text/plain" || string(cloudevent.Data(ev)) != "hello world" {
					t.Errorf("event %v", ev)
				}
				if _, err := uuid.Parse(ev.GetId()); err != nil {
					t.Errorf("id %q is not a UUID", ev.GetId())
				}
			},
		},
		{
			name:   "explicit content type",
			args:   []string{"--id", "x", "--data", `{"a":1}`, "--content-type", "application/vnd.x+json"},
			wantID: "x",
			check: func(t *testing.T, ev *pb.CloudEvent) {
				if ct, _ := cloudevent.Attribute(ev, "datacontenttype"); ct != "application/vnd.x+json" {
					t.Errorf("content type %q", ct)
				}
			},
		},
		{
			name:   "binary file",
			args:   []string{"--id", "b", "--data-file", binPath},
			wantID: "b",
			check: func(t *testing.T, ev *pb.CloudEvent) {
				ct, _ := cloudevent.Attribute(ev, "datacontenttype")
				if string(cloudevent.Data(ev)) != string(bin) || ct != "application/octet-stream" {
					t.Errorf("data %q, content type %q", cloudevent.Data(ev), ct)
				}
			},
		},
		{
			name:   "stdin",
			stdin:  "line\n",
			args:   []string{"--id", "s", "--data-file", "-"},
			wantID: "s",
			check: func(t *testing.T, ev *pb.CloudEvent) {
				if string(cloudevent.Data(ev)) != "line\n" {
					t.Errorf("data %q", cloudevent.Data(ev))
				}
			},
		},
		{
			name:   "no data",
			args:   []string{"--id", "n"},
			wantID: "n",
			check: func(t *testing.T, ev *pb.CloudEvent) {
				if ev.GetData() != nil || ev.GetAttributes()["datacontenttype"] != nil {
					t.Errorf("event %v", ev)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(fake.events())
			args := append([]string{"publish", "--server", addr, "--type", "com.example.t", "--source", "/src"}, tc.args...)
			r := runCLI(t, tc.stdin, args...)
			if r.e != nil {
				t.Fatal(r.e)
			}
			evs := fake.events()
			if len(evs) != n+1 {
				t.Fatalf("%d events published, want 1", len(evs)-n)
			}
			ev := evs[n]
			if ev.GetType() != "com.example.t" || ev.GetSource() != "/src" || ev.GetSpecVersion() != "1.0" {
				t.Errorf("event %v", ev)
			}
			if tc.wantID != "" && ev.GetId() != tc.wantID {
				t.Errorf("id %q, want %q", ev.GetId(), tc.wantID)
			}
			if r.out != "published "+ev.GetId()+"\n" {
				t.Errorf("out %q", r.out)
			}
			tc.check(t, ev)
		})
	}
}

func TestPublishErrors(t *testing.T) {
	t.Run("pushback", func(t *testing.T) {
		st, _ := status.New(codes.ResourceExhausted, `trigger "orders" has 10 undelivered events (max_queue 10)`).WithDetails(
			&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
			&errdetails.ErrorInfo{Reason: "QUEUE_FULL", Metadata: map[string]string{"trigger": "orders"}},
		)
		addr := startFake(t, nil, &fakeEvents{err: st.Err()})
		r := runCLI(t, "", "publish", "--server", addr, "--type", "t", "--source", "s", "--data", "x")
		if got := ExitCode(r.e); got != ExitPushback {
			t.Errorf("exit code %d, want %d (err %v)", got, ExitPushback, r.e)
		}
		want := "pushed back: trigger \"orders\" has reached its max_queue; retry after 1.5s\n" +
			`  trigger "orders" has 10 undelivered events (max_queue 10)`
		if r.e == nil || r.e.Error() != want {
			t.Errorf("err:\n%v\nwant:\n%s", r.e, want)
		}
		if r.out != "" {
			t.Errorf("out %q", r.out)
		}
	})
	t.Run("invalid on the server", func(t *testing.T) {
		addr := startFake(t, nil, &fakeEvents{err: badRequest("invalid event",
			"event.subject", "contains control character U+0002", "event.tenant", "too long")})
		r := runCLI(t, "", "publish", "--server", addr, "--type", "t", "--source", "s")
		if got := ExitCode(r.e); got != ExitInvalid {
			t.Errorf("exit code %d, want %d (err %v)", got, ExitInvalid, r.e)
		}
		want := "invalid event: invalid event\n  event.subject: contains control character U+0002\n  event.tenant: too long"
		if r.e == nil || r.e.Error() != want {
			t.Errorf("err:\n%v\nwant:\n%s", r.e, want)
		}
	})
	t.Run("invalid client-side, no call", func(t *testing.T) {
		fake := &fakeEvents{}
		addr := startFake(t, nil, fake)
		r := runCLI(t, "", "publish", "--server", addr, "--type", "", "--source", "")
		if got := ExitCode(r.e); got != ExitInvalid {
			t.Errorf("exit code %d, want %d (err %v)", got, ExitInvalid, r.e)
		}
		if r.e == nil || !strings.HasPrefix(r.e.Error(), "invalid event\n  event.source: ") || !strings.Contains(r.e.Error(), "\n  event.type: ") {
			t.Errorf("err %v", r.e)
		}
		if n := len(fake.events()); n != 0 {
			t.Errorf("%d events sent", n)
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		r := runCLI(t, "", "publish", "--server", closedAddr(t), "--type", "t", "--source", "s", "--timeout", "2s")
		if ExitCode(r.e) != 1 || r.e == nil || !strings.HasPrefix(r.e.Error(), "UNAVAILABLE: ") {
			t.Errorf("err %v", r.e)
		}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", "s"}, `"type" not set`},
		{[]string{"--type", "t"}, `"source" not set`},
		{[]string{"--type", "t", "--source", "s", "--data", "x", "--data-file", "f"}, "none of the others can be"},
		{[]string{"--type", "t", "--source", "s", "--ext", "bad"}, "want name=value"},
		{[]string{"--type", "t", "--source", "s", "--time", "yesterday"}, "want RFC 3339"},
		{[]string{"--type", "t", "--source", "s", "--data-file", "/nonexistent/x"}, "--data-file"},
	} {
		r := runCLI(t, "", append([]string{"publish", "--server", closedAddr(t)}, tc.args...)...)
		if r.e == nil || !strings.Contains(r.e.Error(), tc.want) {
			t.Errorf("publish %v: err %v, want %q", tc.args, r.e, tc.want)
		}
	}
}
