package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask a server whether it is ready (GET /readyz); exit 0 when it is, 1 otherwise",
		Long: `Ask a switchyard server whether it is ready: GET --url (its /readyz, which
answers 200 once the store answers) and exit 0 on a 2xx answer, 1 otherwise,
printing the answer. Meant for container health checks:

  healthcheck: {test: ["CMD", "/usr/local/bin/switchyard", "health"]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("--url: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
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
	return cmd
}
