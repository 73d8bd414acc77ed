// Package deploy holds no code: it is the home of the container image
// (Dockerfile), the compose file and its configuration. Its tests check the
// invariants those files promise (ports on loopback by default, a Redis
// password without an insecure default, health checks, the mounted
// configuration, the sample function, the version from the source
// revision), since no Docker engine runs in the test environment.
package deploy
