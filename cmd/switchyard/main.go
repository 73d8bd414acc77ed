// Command switchyard is the Switchyard binary: `switchyard serve` runs an
// instance; the other subcommands are clients of its API. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/switchyard-io/switchyard/cli"
	_ "github.com/switchyard-io/switchyard/connectors/all" // every built-in connector
	_ "github.com/switchyard-io/switchyard/targets/all"    // every built-in broker target kind
)

func main() {
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(cli.ExitCode(err))
	}
}
