package cli

import (
	"os"

	"github.com/spf13/cobra"
)

// Version is the switchyard version, set at build time with
// -ldflags "-X github.com/switchyard-io/switchyard/cli.Version=v1.2.3".
var Version = "dev"

// DefaultServer is the gRPC address client commands talk to.
const DefaultServer = "localhost:9090"

// NewRoot builds the switchyard command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "switchyard",
		Short: "Switchyard: a CloudEvents event bus and trigger router",
		Long: "Switchyard accepts CloudEvents, routes them by trigger and delivers them over gRPC or HTTP with retries, per-function concurrency limits and a dead-letter queue.\n\n" +
			exitCodesHelp,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           Version,
		PersistentPreRunE: checkFlags,
	}
	root.AddCommand(newServeCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	markUsageErrors(root)
	return root
}

// extraCommands are registered by the files that define them.
var extraCommands []func() *cobra.Command

// serverFlag adds the --server flag (env SWITCHYARD_SERVER) to a client command.
func serverFlag(cmd *cobra.Command, dst *string) {
	def := DefaultServer
	if v := os.Getenv("SWITCHYARD_SERVER"); v != "" {
		def = v
	}
	cmd.Flags().StringVar(dst, "server", def, "gRPC address of a switchyard server (env SWITCHYARD_SERVER)")
}
