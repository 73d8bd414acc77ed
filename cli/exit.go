package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
)

// Exit codes of every command (see [ExitCode]); the root command's help
// lists them.
const (
	// ExitFailure is any other failure: the server cannot be reached, the
	// store failed, a file cannot be read.
	ExitFailure = 1
	// ExitInvalid means the input was refused as invalid and nothing was
	// changed: a bad flag or argument, an invalid trigger file, event or
	// dead letter id, or a request the server answered INVALID_ARGUMENT.
	// Retrying it unchanged fails again.
	ExitInvalid = 2
	// ExitPushback means a matching trigger's queue is full
	// (RESOURCE_EXHAUSTED): nothing was accepted, retry later.
	ExitPushback = 3
	// ExitNotFound means the named trigger or dead letter does not exist
	// (NOT_FOUND).
	ExitNotFound = 4
)

// exitCodesHelp documents the exit codes in the root command's help.
const exitCodesHelp = `Exit status (every command):
  0  success
  1  failure: the server cannot be reached, the store failed, a file cannot be read
  2  invalid input, nothing changed: a bad flag or argument, an invalid trigger
     file, event or dead letter id, or a request the server refused as invalid
  3  pushed back: a matching trigger's queue is full; retry later
  4  not found: the named trigger or dead letter does not exist`

// ExitError is an error that asks for a specific process exit code; see
// [ExitCode].
type ExitError struct {
	// Code is the exit code.
	Code int
	// Err is what went wrong.
	Err error
}

// Error implements error.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *ExitError) Unwrap() error { return e.Err }

// invalidf returns an error with exit code [ExitInvalid].
func invalidf(format string, a ...any) error {
	return &ExitError{Code: ExitInvalid, Err: fmt.Errorf(format, a...)}
}

// usageError marks an error of the command line (flags, arguments) with
// exit code [ExitInvalid].
func usageError(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: ExitInvalid, Err: err}
}

// ExitCode returns the process exit code for an error returned by a command
// of [NewRoot]: 0 for nil; the code of an [*ExitError] in the chain; for an
// error of the API, by its gRPC status: INVALID_ARGUMENT [ExitInvalid],
// RESOURCE_EXHAUSTED [ExitPushback], NOT_FOUND [ExitNotFound]; else
// [ExitFailure].
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code != 0 {
		return ee.Code
	}
	if st, ok := grpcStatus(err); ok {
		switch st.Code() {
		case codes.InvalidArgument:
			return ExitInvalid
		case codes.ResourceExhausted:
			return ExitPushback
		case codes.NotFound:
			return ExitNotFound
		}
	}
	return ExitFailure
}

// markUsageErrors makes the command-line errors of cmd and its subcommands
// (unknown flags, bad flag values, wrong arguments, unknown subcommands,
// missing required flags, conflicting flags) exit with [ExitInvalid]. A
// command that only groups subcommands prints its help when called alone.
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", s[0])
			}
			return usageError(errors.New(msg))
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	} else if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error { return usageError(args(c, a)) }
	}
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}

// checkFlags runs the checks cobra makes after the pre-run hooks (required
// flags, flag groups) early, so that their errors exit with [ExitInvalid].
func checkFlags(cmd *cobra.Command, _ []string) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageError(err)
	}
	return usageError(cmd.ValidateFlagGroups())
}
