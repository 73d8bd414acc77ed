package childproc

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestParseServing(t *testing.T) {
	tests := map[string]struct {
		line    string
		want    Addrs
		notLine bool   // ErrNotServing
		errHas  string // a serving line with a bad field: the error names it
	}{
		"the server's line": {
			line: `{"time":"2026-11-26T07:00:55Z","level":"INFO","msg":"switchyard serving","http":"127.0.0.1:43611","grpc":"127.0.0.1:39463","sources":0}`,
			want: Addrs{HTTP: "127.0.0.1:43611", GRPC: "127.0.0.1:39463"},
		},
		"IPv6 wildcard": {
			line: `{"msg":"switchyard serving","http":"[::]:8080","grpc":"[::]:9090"}`,
			want: Addrs{HTTP: "[::]:8080", GRPC: "[::]:9090"},
		},
		"another message":       {line: `{"level":"INFO","msg":"store: redis"}`, notLine: true},
		"not JSON":              {line: `not json`, notLine: true},
		"empty":                 {line: ``, notLine: true},
		"text format":           {line: `time=2026-11-26T07:00:55Z level=INFO msg="switchyard serving" http=127.0.0.1:1 grpc=127.0.0.1:2`, notLine: true},
		"JSON array":            {line: `["switchyard serving"]`, notLine: true},
		"msg not a string":      {line: `{"msg":7,"http":"127.0.0.1:1","grpc":"127.0.0.1:2"}`, notLine: true},
		"message as a prefix":   {line: `{"msg":"switchyard serving soon","http":"127.0.0.1:1","grpc":"127.0.0.1:2"}`, notLine: true},
		"truncated":             {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":"127.`, notLine: true},
		"no addresses":          {line: `{"msg":"switchyard serving"}`, errHas: "field http: missing"},
		"no grpc":               {line: `{"msg":"switchyard serving","http":"127.0.0.1:1"}`, errHas: "field grpc: missing"},
		"null grpc":             {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":null}`, errHas: "field grpc: missing"},
		"grpc a number":         {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":9090}`, errHas: "field grpc: want a string"},
		"http without a port":   {line: `{"msg":"switchyard serving","http":"127.0.0.1","grpc":"127.0.0.1:2"}`, errHas: "field http:"},
		"grpc empty":            {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":""}`, errHas: "field grpc:"},
		"port zero":             {line: `{"msg":"switchyard serving","http":"127.0.0.1:0","grpc":"127.0.0.1:2"}`, errHas: "field http:"},
		"port out of range":     {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":"127.0.0.1:65536"}`, errHas: "field grpc:"},
		"named port":            {line: `{"msg":"switchyard serving","http":"127.0.0.1:http","grpc":"127.0.0.1:2"}`, errHas: "field http:"},
		"no host":               {line: `{"msg":"switchyard serving","http":":8080","grpc":"127.0.0.1:2"}`, errHas: "field http:"},
		"both bad, both named":  {line: `{"msg":"switchyard serving","http":"x","grpc":"y"}`, errHas: "field grpc:"},
		"trailing garbage line": {line: `{"msg":"switchyard serving","http":"127.0.0.1:1","grpc":"127.0.0.1:2"} x`, notLine: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseServing([]byte(tc.line))
			switch {
			case tc.notLine:
				if !errors.Is(err, ErrNotServing) {
					t.Fatalf("got %+v, %v; want ErrNotServing", got, err)
				}
			case tc.errHas != "":
				if err == nil || errors.Is(err, ErrNotServing) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tc.errHas)
				}
			default:
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
			}
		})
	}
}

// FuzzParseServing: no input panics; an accepted line came with a valid
// host:port for both listeners; a failure is either "not the line" or an
// error naming the field.
func FuzzParseServing(f *testing.F) {
	for _, s := range []string{
		`{"level":"INFO","msg":"switchyard serving","http":"127.0.0.1:43611","grpc":"127.0.0.1:39463"}`,
		`{"msg":"switchyard serving","http":"[::]:8080","grpc":"[::1]:9090"}`,
		`{"msg":"switchyard serving","http":"127.0.0.1","grpc":9}`,
		`{"msg":"switchyard serving"}`,
		`{"msg":"store: redis"}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		a, err := ParseServing(line)
		if err != nil {
			if a != (Addrs{}) {
				t.Fatalf("error %v with addresses %+v", err, a)
			}
			if !errors.Is(err, ErrNotServing) && !strings.Contains(err.Error(), "field ") {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		for _, s := range []string{a.HTTP, a.GRPC} {
			if h, p, err := net.SplitHostPort(s); err != nil || h == "" || p == "" || p == "0" {
				t.Fatalf("accepted %q from %q", s, line)
			}
		}
	})
}
