package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newHealthCmd) }

// DefaultHealthURL is the readiness endpoint `switchyard health` asks.
const DefaultHealthURL = "http://127.0.0.1:8080/readyz"

// newHealthCmd is a probe for containers whose image has nothing but the
// binary (the distroless image has no shell, curl or wget): it asks a
// server's /readyz and exits 0 only on a 2xx answer.
func newHealthCmd() *cobra.Command {
	var (
		url     string
		timeout time.Duration
		tlsOpt  healthTLS
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask a server whether it is ready (GET /readyz); exit 0 when it is, 1 otherwise",
		Long: `Ask a switchyard server whether it is ready: GET --url (its /readyz, which
answers 200 once the store answers) and exit 0 on a 2xx answer, 1 otherwise,
printing the answer. Meant for container health checks:

  healthcheck: {test: ["CMD", "/usr/local/bin/switchyard", "health"]}

For a server with TLS on, give an https:// URL and --tls-ca (its CA), and,
when it requires client certificates, --tls-cert and --tls-key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--url: %w", err)
			}
			client, err := tlsOpt.client()
			if err != nil {
				return usageError(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("not ready: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			text := strings.TrimSpace(string(body))
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("not ready: %s: %s", resp.Status, text)
			}
			fmt.Fprintln(cmd.OutOrStdout(), text)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", DefaultHealthURL, "readiness URL of the server")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	cmd.Flags().StringVar(&tlsOpt.ca, "tls-ca", "", "CA certificates (PEM) to trust for an https:// URL instead of the system's")
	cmd.Flags().StringVar(&tlsOpt.cert, "tls-cert", "", "client certificate (PEM), for a server that requires one")
	cmd.Flags().StringVar(&tlsOpt.key, "tls-key", "", "key (PEM) of --tls-cert")
	cmd.Flags().StringVar(&tlsOpt.serverName, "tls-server-name", "", "name the server's certificate must carry, when not the URL's host")
	return cmd
}

// healthTLS are health's TLS options.
type healthTLS struct{ ca, cert, key, serverName string }

// client returns the HTTP client the options describe.
func (o healthTLS) client() (*http.Client, error) {
	if o == (healthTLS{}) {
		return http.DefaultClient, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	if o.ca != "" {
		b, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", o.ca)
		}
	}
	if (o.cert == "") != (o.key == "") {
		return nil, errors.New("--tls-cert and --tls-key: give both or neither")
	}
	if o.cert != "" {
		c, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, nil
}
