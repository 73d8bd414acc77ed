// Package cli is the switchyard command line: `serve` runs an instance, and
// the other commands (trigger, publish, sink, dlq, bench) are clients of its
// gRPC API built on the sdk package. cmd/switchyard only calls NewRoot, and
// exits with ExitCode of its error: one set of exit codes for every command
// (exit.go), listed in the root command's help.
package cli
