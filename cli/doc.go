// Package cli is the switchyard command line: `serve` runs an instance, and
// the other commands (trigger, filter, publish, pull, dlq, source, token,
// audit, health) are clients of its API built on the sdk package; `sink` is
// a sample function and `bench` runs the benchmark against a server of its
// own. cmd/switchyard only calls NewRoot, and
// exits with ExitCode of its error: one set of exit codes for every command
// (exit.go), listed in the root command's help.
package cli
