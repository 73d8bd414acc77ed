// Package childproc starts a `switchyard serve` process as a child of this
// one and owns it until it is gone: the end-to-end tests (e2e) and
// `switchyard bench` both run their servers through it, so there is one
// reading of the server's start-up log and one way of stopping it.
//
// # Contract
//
// Start runs Config.Exe with Config.Args, its environment this process's
// plus Config.Env, and returns once the child has logged its serving line:
// the JSON log line whose msg is "switchyard serving" and whose fields
// "http" and "grpc" are the addresses its listeners are bound to (the
// server logs it once both listen, so a caller may connect at once; it
// asks for port 0 and learns the port here). Its standard output is
// discarded; its standard error is read line by line for as long as it
// runs, by one goroutine that Start owns and that ends when the child has
// exited and been waited for.
//
// Start fails, with the lines logged so far in its error, when the child
// cannot be started, exits before serving, logs a serving line whose
// addresses do not parse (ParseServing's error), or has not served within
// Config.StartTimeout or before ctx is done; in the last three cases it
// stops the child first (SIGTERM, SIGKILL after a second), so a failed
// Start leaves no process behind. ctx bounds only that wait: the child
// outlives it, and lives until Kill, Stop or its own exit.
//
// Every stderr line is kept for Logs and Tail (the last Config.KeepLines
// of them, or all) and, when Config.Echo is set, handed to it as it is
// read, serving line included. Lines longer than 1 MiB end the reading of
// lines; the rest of the stream is then discarded, never left to fill the
// pipe (a child blocked on a full stderr pipe would never exit).
//
// Kill (SIGKILL) and Stop (SIGTERM, then SIGKILL once a grace period is
// over) return only once the child has exited and been waited for; both,
// Wait, Signal and the readers of the log may be called from any
// goroutine, any number of times, also after the child has exited. Stop
// reports ErrStopTimeout when it had to kill, else the child's own exit
// status (nil for exit code 0), so a caller can tell a graceful shutdown
// from a forced one.
//
// # Orphans
//
// On Linux the child gets SIGTERM when this process dies (the kernel's
// parent-death signal, DieWithParent), so a test binary or a benchmark that
// is killed leaves no server running against the shared Redis, skewing the
// next measurement or test. The signal follows the OS thread that started
// the child; the Go runtime does not retire its threads (a goroutine that
// ends locked to its thread aside, which none here does). Elsewhere there
// is no such signal and the child may outlive a killed parent. The child
// stays in this process's process group, so a ^C at a terminal reaches it
// too.
package childproc
