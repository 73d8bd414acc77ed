package cli

import (
	"github.com/spf13/pflag"

	"github.com/switchyard-io/switchyard/server"
)

// tlsFlags adds serve's listener TLS and transport limit flags (the config
// file's tls_*, max_connections, max_concurrent_streams and
// http_body_timeout keys).
func tlsFlags(f *pflag.FlagSet, cfg *server.Config) {
	f.StringVar(&cfg.TLS.CertFile, "tls-cert-file", "", "certificate chain (PEM) both listeners serve TLS with; re-read when it changes")
	f.StringVar(&cfg.TLS.KeyFile, "tls-key-file", "", "private key (PEM) of --tls-cert-file")
	f.StringVar(&cfg.TLS.ClientCAFile, "tls-client-ca-file", "", "CA certificates (PEM) that sign client certificates (mTLS); re-read when it changes")
	f.StringVar(&cfg.TLS.ClientAuth, "tls-client-auth", "", "with --tls-client-ca-file: require or request a client certificate (default: request when bearer tokens are accepted too, else require)")
	f.IntVar(&cfg.Transport.MaxConnections, "max-connections", 0, "connections each listener holds open; more are closed at once (default 4096)")
	f.IntVar(&cfg.Transport.MaxConcurrentStreams, "max-concurrent-streams", 0, "calls in flight on one HTTP/2 connection (default 256)")
	f.DurationVar(&cfg.Transport.BodyTimeout, "http-body-timeout", 0, "time an HTTP request body may take to arrive after its headers (default 30s)")
}
