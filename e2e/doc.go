// Package e2e holds the tests that run switchyard as real processes against
// the real Redis on this machine: crash (SIGKILL) and restart, several
// instances sharing one Redis, the CLI end to end. It has no non-test code.
package e2e
