package trigger

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func TestPullTarget(t *testing.T) {
	cases := map[string]struct {
		target string
		paths  []string
	}{
		"pull":               {target: `{pull: {}}`},
		"pull json":          {target: `{"pull": {}}`},
		"pull and grpc":      {target: `{pull: {}, grpc: "h:1"}`, paths: []string{"target"}},
		"pull and url":       {target: `{pull: {}, url: "https://h/x"}`, paths: []string{"target"}},
		"pull with tls":      {target: `{pull: {}, tls: {server_name: fn}}`, paths: []string{"target.tls"}},
		"pull with auth":     {target: `{pull: {}, auth: {bearer_secret: t}}`, paths: []string{"target.auth"}},
		"pull tls and auth":  {target: `{pull: {}, tls: {}, auth: {bearer_secret: t}}`, paths: []string{"target.tls", "target.auth"}},
		"nothing":            {target: `{}`, paths: []string{"target"}},
		"pull null is unset": {target: `{pull: null}`, paths: []string{"target"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			docs, ferrs := Decode([]byte("name: a\ntarget: " + tc.target))
			require.Nil(t, ferrs)
			require.Len(t, docs, 1)
			require.Equal(t, tc.paths, fieldPaths(t, docs[0].Spec.Validate()))
		})
	}
}

func TestPullTargetUnknownFieldIsRefusedWithItsPath(t *testing.T) {
	_, ferrs := Decode([]byte("name: a\ntarget:\n  pull: {batch: 3}\n"))
	require.Len(t, ferrs, 1)
	require.Equal(t, "target.pull.batch", ferrs[0].Path)
	require.Equal(t, 3, ferrs[0].Line)
}

func TestPullTargetRoundTripsAndPassesEveryPolicy(t *testing.T) {
	s := Spec{Name: "jobs", Target: Target{Pull: &PullTarget{}}}
	p := ToProto(s)
	require.NotNil(t, p.GetTarget().GetPull())
	b, err := proto.Marshal(p)
	require.NoError(t, err)
	var back = p.ProtoReflect().New().Interface()
	require.NoError(t, proto.Unmarshal(b, back))
	require.Equal(t, s, FromProto(p))
	require.Equal(t, PullRedacted, s.Target.Redacted())
	require.Empty(t, s.Target.Address())

	// A pull target connects nowhere: a server that guards egress, requires
	// TLS and checks secrets has nothing to refuse.
	strict := Policy{
		RequireTLS:   true,
		CheckAddress: func(string) error { return errRefused },
		CheckSecret:  func(string) error { return errRefused },
		CheckTLS:     func(TargetTLS) error { return errRefused },
	}
	tr, err := CompileWith(s, strict)
	require.NoError(t, err)
	require.True(t, tr.Spec.Target.IsPull())
	require.NoError(t, s.ValidateWith(strict))
}

type refusedError struct{}

func (refusedError) Error() string { return "refused" }

var errRefused = refusedError{}
