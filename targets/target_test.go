package targets

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
)

func validSpec() Spec {
	return Spec{
		Kind: "k", Summary: "s", Layout: "l", Confirms: "c",
		Fields: []connectors.Field{
			{Name: "addr", Type: connectors.TypeString, Required: true, Doc: "d"},
			{Name: "pw_secret", Type: connectors.TypeSecretName, Doc: "d"},
			{Name: "n", Type: connectors.TypeInt, Default: 3, Doc: "d"},
		},
		Addresses: func(c Config) []Address { return []Address{{Field: "addr", HostPort: c.String("addr")}} },
		Display:   func(c Config) string { return c.String("addr") },
		New:       func(context.Context, Config, Env) (Publisher, error) { return nil, errors.New("no") },
	}
}

func TestRegisterRefusesIncompleteSpecs(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, r.Register(validSpec()))
	require.ErrorContains(t, r.Register(validSpec()), "registered twice")
	cases := map[string]func(*Spec){
		"bad kind":  func(s *Spec) { s.Kind = "Bad-Kind" },
		"no layout": func(s *Spec) { s.Layout = "" },
		"field named kind": func(s *Spec) {
			s.Fields = append(s.Fields, connectors.Field{Name: "kind", Type: connectors.TypeString, Doc: "d"})
		},
		"inline secret":    func(s *Spec) { s.Fields[0].Secret = true },
		"bad default":      func(s *Spec) { s.Fields[2].Default = "three" },
		"required default": func(s *Spec) { s.Fields[0].Default = "x" },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			s := validSpec()
			s.Kind = "k2"
			mut(&s)
			require.Error(t, NewRegistry().Register(s))
		})
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	s := validSpec()
	s.Check = func(c Config) []FieldProblem {
		if c.String("addr") == "bad" {
			return []FieldProblem{{Field: "addr", Msg: "bad address"}}
		}
		return nil
	}
	_, problems := s.Build(map[string]any{"n": "x", "colour": "red", "pw_secret": "no spaces allowed"})
	var got []string
	for _, p := range problems {
		got = append(got, p.Field+": "+p.Msg)
	}
	require.Equal(t, []string{"colour: known: addr, n, pw_secret", "addr: required: d", "n: want a int, got string (x)",
		`pw_secret: "no spaces allowed" is not a secret name: use 1 to 128 letters, digits, '_' and '-', starting with a letter or digit`}, got)
	_, problems = s.Build(map[string]any{"addr": "bad"})
	require.Equal(t, []FieldProblem{{Field: "addr", Msg: "bad address"}}, problems)
	c, problems := s.Build(map[string]any{"addr": "h:1", "pw_secret": "db-pw"})
	require.Empty(t, problems)
	require.Equal(t, 3, c.Int("n"))
	require.Equal(t, []Address{{Field: "pw_secret", HostPort: "db-pw"}}, s.SecretNames(c))
}

func TestAttributesAndJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ev := &pb.CloudEvent{Id: "1", Source: "/s", SpecVersion: "1.0", Type: "t", Attributes: map[string]*pb.CloudEventAttributeValue{
		"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "text/plain"}},
		"zflag":           {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
		"count":           {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -7}},
		"blob":            {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{1, 2}}},
		"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(ts)}},
		"empty":           {},
	}}
	var names []string
	for _, a := range Attributes(ev) {
		names = append(names, a.Name+"="+a.Text)
	}
	require.Equal(t, []string{"blob=AQI=", "count=-7", "id=1", "source=/s", "specversion=1.0", "time=2026-01-02T03:04:05.000000006Z", "type=t", "zflag=true"}, names)
	require.Equal(t, "text/plain", ContentType(ev))
	var m map[string]any
	require.NoError(t, json.Unmarshal(AttributesJSON(ev), &m))
	require.Equal(t, map[string]any{"blob": "AQI=", "count": -7.0, "id": "1", "source": "/s", "specversion": "1.0", "time": "2026-01-02T03:04:05.000000006Z", "type": "t", "zflag": true}, m)
	require.Len(t, DedupID(ev), 32)
	require.Equal(t, DedupID(ev), DedupID(&pb.CloudEvent{Id: "1", Source: "/s"}))
	require.NotEqual(t, DedupID(ev), DedupID(&pb.CloudEvent{Id: "/s", Source: "1"}))
}

func TestFailureOf(t *testing.T) {
	require.Equal(t, NotFound, FailureOf(Failf(NotFound, "x")))
	require.Equal(t, NotFound, FailureOf(Fail(Timeout, Failf(NotFound, "x"))), "the innermost classification stands")
	require.Equal(t, Timeout, FailureOf(context.DeadlineExceeded))
	require.Equal(t, Unreachable, FailureOf(&net.OpError{Op: "dial", Err: errors.New("refused")}))
	require.Equal(t, Unavailable, FailureOf(errors.New("?")))
	require.Nil(t, Fail(Timeout, nil))
	require.Equal(t, "BROKER_NOT_FOUND", NotFound.String())
}

func TestNoUserinfo(t *testing.T) {
	require.NoError(t, NoUserinfo("amqp://host:5672/vhost"))
	require.NoError(t, NoUserinfo("redis://host/0?x=a@b"))
	require.Error(t, NoUserinfo("amqp://u:p@host/"))
	require.Error(t, NoUserinfo("u@host:1"))
}

// FuzzPercentEncode: the header encoding of the NATS binding decodes back
// with url.PathUnescape, which is what the nats_jetstream source uses, and
// leaves only printable ASCII.
func FuzzPercentEncode(f *testing.F) {
	for _, s := range []string{"", "plain", "eu 42 ü \"quoted\" 100%", "\x00\x7f\xff", "%41", "a+b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := PercentEncode(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] <= 0x20 || enc[i] >= 0x7f || enc[i] == '"' {
				t.Fatalf("%q encodes to %q with byte %#x", s, enc, enc[i])
			}
		}
		dec, err := url.PathUnescape(enc)
		if err != nil || dec != s {
			t.Fatalf("%q → %q → %q, %v", s, enc, dec, err)
		}
		if !strings.ContainsAny(s, "% \"\x00") && isPrintable(s) && enc != s {
			t.Fatalf("printable %q changed to %q", s, enc)
		}
	})
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
