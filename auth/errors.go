package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the typed errors below match
// their sentinel.
var (
	// ErrUnauthenticated: the credentials prove nothing (missing, malformed,
	// unknown, expired, revoked, badly signed). HTTP 401, gRPC
	// UNAUTHENTICATED. The concrete error is an *UnauthenticatedError whose
	// reason is safe to show.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the identity is known but may not do this. HTTP
	// 403, gRPC PERMISSION_DENIED. The concrete error is a *DeniedError.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnavailable: the credentials could not be checked because the key
	// store (Redis) did not answer. HTTP 503, gRPC UNAVAILABLE: the caller
	// should retry, and must not be told its key is invalid.
	ErrUnavailable = errors.New("credential store unavailable")
	// ErrKeyExists: an API key of that name exists already (gRPC
	// ALREADY_EXISTS, HTTP 409).
	ErrKeyExists = errors.New("an API key of that name exists")
	// ErrKeyNotFound: no API key has that name (gRPC NOT_FOUND, HTTP 404).
	ErrKeyNotFound = errors.New("no API key of that name")
)

// UnauthenticatedError says why credentials were refused. Reason never
// contains the credential, so it may be shown to the caller; Method names
// the method that refused them, when one did.
type UnauthenticatedError struct {
	Method Method
	Reason string
}

func (e *UnauthenticatedError) Error() string {
	if e.Method != "" {
		return fmt.Sprintf("unauthenticated (%s): %s", e.Method, e.Reason)
	}
	return "unauthenticated: " + e.Reason
}

// Is makes errors.Is(err, ErrUnauthenticated) hold.
func (e *UnauthenticatedError) Is(target error) bool { return target == ErrUnauthenticated }

func unauthenticated(m Method, format string, args ...any) error {
	return &UnauthenticatedError{Method: m, Reason: fmt.Sprintf(format, args...)}
}

// DeniedError says which permission an identity lacks, or which value lies
// outside its scope.
type DeniedError struct {
	// Subject is the identity's subject ("" for a missing identity).
	Subject string
	// Permission is the permission that was asked for.
	Permission Permission
	// Field names what is out of scope: "source" or "type" (CloudEvents
	// attributes of a publish), HopsAttribute (the hop-count extension), or
	// "trigger" (a trigger name), "roles" or "scope" (of a credential being
	// granted, see Identity.AllowGrant). Empty when the permission itself is
	// missing.
	Field string
	// Value is the out-of-scope value the caller sent (a source, type or
	// trigger name; never a credential).
	Value string
}

func (e *DeniedError) Error() string {
	who := e.Subject
	if who == "" {
		who = "the caller"
	}
	switch {
	case e.Field == HopsAttribute:
		return fmt.Sprintf("permission denied: %s may not set the %s extension (needs %s)", who, HopsAttribute, PermSetHops)
	case e.Field == "roles":
		return fmt.Sprintf("permission denied: %s may not grant role %q (it lacks %s)", who, truncate(e.Value, 64), e.Permission)
	case e.Field == "scope":
		return fmt.Sprintf("permission denied: %s may not grant a scope wider than its own", who)
	case e.Field != "":
		return fmt.Sprintf("permission denied: %s %q is outside the scope of %s", e.Field, truncate(e.Value, 256), who)
	}
	return fmt.Sprintf("permission denied: %s lacks %s", who, e.Permission)
}

// Is makes errors.Is(err, ErrPermissionDenied) hold.
func (e *DeniedError) Is(target error) bool { return target == ErrPermissionDenied }
