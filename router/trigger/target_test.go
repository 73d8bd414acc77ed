package trigger

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/router/delivery/egress"
)

func fieldPaths(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var fe FieldErrors
	require.True(t, errors.As(err, &fe), "want FieldErrors, got %v", err)
	var out []string
	for _, f := range fe {
		out = append(out, f.Path)
	}
	return out
}

func TestTargetValidation(t *testing.T) {
	cases := map[string]struct {
		target string
		paths  []string
	}{
		"grpcs":                 {target: `{grpc: "grpcs://fn.example:443"}`},
		"grpcs with tls":        {target: `{grpc: "grpcs://fn.example:443", tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, server_name: fn.internal}}`},
		"https with tls":        {target: `{url: "https://fn.example/x", tls: {server_name: 10.0.0.1}}`},
		"bearer over grpcs":     {target: `{grpc: "grpcs://fn.example:443", auth: {bearer_secret: FN_TOKEN}}`},
		"bearer to loopback":    {target: `{grpc: "127.0.0.1:7070", auth: {bearer_secret: fn-token}}`},
		"bearer to localhost":   {target: `{url: "http://localhost:8080/x", auth: {bearer_secret: fn-token}}`},
		"signed http":           {target: `{url: "http://fn.example/x", auth: {signing_secret: hooks}}`},
		"grpc scheme":           {target: `{grpc: "grpc://fn:1"}`, paths: []string{"target.grpc"}},
		"grpcs no port":         {target: `{grpc: "grpcs://fn"}`, paths: []string{"target.grpc"}},
		"tls on plaintext grpc": {target: `{grpc: "fn:1", tls: {server_name: fn}}`, paths: []string{"target.tls"}},
		"tls on http":           {target: `{url: "http://fn/x", tls: {}}`, paths: []string{"target.tls"}},
		"relative paths":        {target: `{grpc: "grpcs://fn:1", tls: {ca_file: ca.pem, cert_file: /a/../c.pem, key_file: /k.pem}}`, paths: []string{"target.tls.ca_file", "target.tls.cert_file"}},
		"cert without key":      {target: `{grpc: "grpcs://fn:1", tls: {cert_file: /c.pem}}`, paths: []string{"target.tls"}},
		"bad server name":       {target: `{grpc: "grpcs://fn:1", tls: {server_name: "a b"}}`, paths: []string{"target.tls.server_name"}},
		"bearer in clear":       {target: `{grpc: "fn.example:1", auth: {bearer_secret: t}}`, paths: []string{"target.auth.bearer_secret"}},
		"bearer in clear http":  {target: `{url: "http://10.0.0.1/x", auth: {bearer_secret: t}}`, paths: []string{"target.auth.bearer_secret"}},
		"signing on grpc":       {target: `{grpc: "grpcs://fn:1", auth: {signing_secret: s}}`, paths: []string{"target.auth.signing_secret"}},
		"bad secret names":      {target: `{url: "https://fn/x", auth: {bearer_secret: "../x", signing_secret: "a b"}}`, paths: []string{"target.auth.bearer_secret", "target.auth.signing_secret"}},
		"empty auth":            {target: `{url: "https://fn/x", auth: {}}`, paths: []string{"target.auth"}},
		"redacted url applied":  {target: `{url: "https://fn/x?token=REDACTED"}`, paths: []string{"target.url"}},
		"redacted userinfo":     {target: `{url: "https://REDACTED@fn/x"}`, paths: []string{"target.url"}},
		"bad url port":          {target: `{url: "https://fn:99999/x"}`, paths: []string{"target.url"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			specs, err := Parse([]byte("name: a\ntarget: " + tc.target))
			require.NoError(t, err)
			require.ElementsMatch(t, tc.paths, fieldPaths(t, specs[0].Validate()))
			if len(tc.paths) > 0 {
				return
			}
			c, err := Compile(specs[0])
			require.NoError(t, err)
			p := ToProto(c.Spec)
			require.True(t, proto.Equal(ToProto(FromProto(p)), p), "proto round trip")
			require.Equal(t, c.Spec.Target, FromProto(p).Target)
		})
	}
}

func TestTargetAddressAndSecure(t *testing.T) {
	cases := []struct {
		t      Target
		addr   string
		secure bool
		shown  string
	}{
		{Target{GRPC: "fn:1"}, "fn:1", false, "grpc://fn:1"},
		{Target{GRPC: "grpcs://fn:443"}, "fn:443", true, "grpcs://fn:443"},
		{Target{URL: "https://fn.example/x"}, "fn.example:443", true, "https://fn.example/x"},
		{Target{URL: "HTTPS://fn.example:8443/x"}, "fn.example:8443", true, "https://fn.example:8443/x"},
		{Target{URL: "http://[::1]/x"}, "[::1]:80", false, "http://[::1]/x"},
		{Target{URL: "http://u:p@fn/x?a=1&b&c=&token=abc#frag"}, "fn:80", false, "http://REDACTED@fn/x?a=REDACTED&REDACTED&c=REDACTED&token=REDACTED#REDACTED"},
		{Target{URL: "https://hooks.example/services/T0/B0?sig=s3cret%2Fx"}, "hooks.example:443", true, "https://hooks.example/services/T0/B0?sig=REDACTED"},
		{Target{URL: "https://tok3n@hooks.example/"}, "hooks.example:443", true, "https://REDACTED@hooks.example/"},
	}
	for _, c := range cases {
		require.Equal(t, c.addr, c.t.Address(), c.t.URL+c.t.GRPC)
		require.Equal(t, c.secure, c.t.Secure(), c.t.URL+c.t.GRPC)
		require.Equal(t, c.shown, c.t.Redacted())
		require.Equal(t, c.shown, c.t.String())
	}
	require.Equal(t, "(invalid URL)", RedactURL("http://a b:x/%zz"))
}

func TestRedactProto(t *testing.T) {
	p := ToProto(Spec{Name: "a", Target: Target{URL: "https://u:pw@fn/x?token=abc"}})
	r := RedactProto(p)
	require.Equal(t, "https://REDACTED@fn/x?token=REDACTED", r.GetTarget().GetUrl())
	require.Equal(t, "https://u:pw@fn/x?token=abc", p.GetTarget().GetUrl(), "the argument is left alone")
	plain := ToProto(Spec{Name: "b", Target: Target{URL: "https://fn/x"}})
	require.Same(t, plain, RedactProto(plain))
	g := ToProto(Spec{Name: "c", Target: Target{GRPC: "fn:1"}})
	require.Same(t, g, RedactProto(g))
	require.Nil(t, RedactProto(nil).GetTarget())
	// What a redacted answer holds is refused when applied back.
	require.Contains(t, fieldPaths(t, FromProto(r).Validate()), "target.url")
}

func TestPolicy(t *testing.T) {
	g, err := egress.New(egress.Config{AllowTargets: []string{"10.1.0.0/16"}})
	require.NoError(t, err)
	missing := errors.New("no such secret on this server")
	pol := Policy{
		CheckAddress: g.CheckLiteral,
		RequireTLS:   true,
		CheckSecret: func(name string) error {
			if name == "known" {
				return nil
			}
			return missing
		},
		CheckTLS: func(c TargetTLS) error {
			if c.CAFile == "/missing.pem" {
				return errors.New("open /missing.pem: no such file")
			}
			return nil
		},
	}
	cases := map[string]struct {
		target Target
		paths  []string
	}{
		"allowed":        {target: Target{GRPC: "grpcs://10.1.2.3:443", Auth: &TargetAuth{BearerSecret: "known"}}},
		"public name":    {target: Target{URL: "https://fn.example/x"}},
		"metadata":       {target: Target{URL: "https://169.254.169.254/latest"}, paths: []string{"target.url"}},
		"mapped":         {target: Target{URL: "https://[::ffff:127.0.0.1]/x"}, paths: []string{"target.url"}},
		"redis":          {target: Target{GRPC: "grpcs://127.0.0.1:6379"}, paths: []string{"target.grpc"}},
		"plaintext grpc": {target: Target{GRPC: "fn.example:1"}, paths: []string{"target.grpc"}},
		"plaintext both": {target: Target{GRPC: "127.0.0.1:1"}, paths: []string{"target.grpc", "target.grpc"}},
		"plaintext http": {target: Target{URL: "http://fn.example/x"}, paths: []string{"target.url"}},
		"unknown secret": {target: Target{URL: "https://fn.example/x", Auth: &TargetAuth{BearerSecret: "known", SigningSecret: "other"}}, paths: []string{"target.auth.signing_secret"}},
		"bad tls files":  {target: Target{URL: "https://fn.example/x", TLS: &TargetTLS{CAFile: "/missing.pem"}}, paths: []string{"target.tls"}},
	}
	for name, tc := range cases {
		s := Spec{Name: "a", Target: tc.target}
		require.NoError(t, s.Validate(), name)
		_, err := Compile(s)
		require.NoError(t, err, "%s: Compile ignores the policy", name)
		require.ElementsMatch(t, tc.paths, fieldPaths(t, s.ValidateWith(pol)), name)
		_, err = CompileWith(s, pol)
		require.ElementsMatch(t, tc.paths, fieldPaths(t, err), name)
		require.NoError(t, s.ValidateWith(Policy{}), "%s: the zero policy allows it", name)
	}
	// An invalid spec reports its own errors, not the policy's.
	require.Equal(t, []string{"target.grpc"}, fieldPaths(t, Spec{Name: "a", Target: Target{GRPC: "x"}}.ValidateWith(pol)))
	_, err = CompileWith(Spec{Name: "a", Target: Target{GRPC: "x"}}, pol)
	require.Equal(t, []string{"target.grpc"}, fieldPaths(t, err))
}

// FuzzRedactURL: redaction is idempotent, and what it renders parses with
// no credential left: userinfo, every query value and the fragment read
// Redaction.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://u:p@h/x?a=1&b#f", "http://h/?&&=x&a==b", "https://h/%2F?q=%zz", "http://[::1]:80/?x=y;z",
		"https://h?token=abc", "http://h/#", "https://user@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := RedactURL(raw)
		if r == "(invalid URL)" {
			return
		}
		if again := RedactURL(r); again != r {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, r, again)
		}
		u, err := url.Parse(r)
		if err != nil {
			t.Fatalf("redacted %q does not parse: %v", r, err)
		}
		if u.User != nil && u.User.String() != Redaction {
			t.Fatalf("userinfo left in %q", r)
		}
		for _, p := range strings.Split(u.RawQuery, "&") {
			if k, v, ok := strings.Cut(p, "="); ok && v != Redaction || !ok && k != "" && k != Redaction {
				t.Fatalf("query value left in %q", r)
			}
		}
		if u.Fragment != "" && u.Fragment != Redaction {
			t.Fatalf("fragment left in %q", r)
		}
	})
}
