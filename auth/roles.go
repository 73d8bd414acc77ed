package auth

import (
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"
)

// allPermissions lists every permission, in the order Permissions reports.
var allPermissions = []Permission{
	PermPublish, PermSetHops, PermConsume,
	PermTriggersRead, PermTriggersWrite,
	PermDeadLettersRead, PermDeadLettersWrite,
	PermArchiveRead, PermArchiveReplay,
	PermSourcesRead, PermMetricsRead,
	PermTokensManage, PermAuditRead,
}

var (
	viewerPerms   = []Permission{PermTriggersRead, PermDeadLettersRead, PermArchiveRead, PermSourcesRead, PermMetricsRead}
	operatorPerms = append(slices.Clone(viewerPerms), PermTriggersWrite, PermDeadLettersWrite, PermArchiveReplay)
)

// rolePerms is the role table. Each role is spelled out rather than built
// from another at run time, so reading this table is reading the policy.
var rolePerms = map[Role][]Permission{
	RolePublisher: {PermPublish},
	RoleRelay:     {PermPublish, PermSetHops},
	RoleConsumer:  {PermConsume},
	RoleViewer:    viewerPerms,
	RoleOperator:  operatorPerms,
	RoleAdmin:     allPermissions,
}

// RolePermissions lists what role grants; nil for an unknown role.
func RolePermissions(role Role) []Permission { return slices.Clone(rolePerms[role]) }

func roleGrants(role Role, perm Permission) bool {
	return slices.Contains(rolePerms[role], perm)
}

// ValidRole reports whether role is one of Roles.
func ValidRole(role Role) bool {
	_, ok := rolePerms[role]
	return ok
}

// Limits on what a scope and a role list may hold, so that a key record or a
// token claim stays small and a decision stays cheap.
const (
	// MaxScopePrefixes is the most prefixes in one dimension of a scope.
	MaxScopePrefixes = 32
	// MaxPrefixLength is the longest source or type prefix, in bytes.
	MaxPrefixLength = 256
	// maxTriggerNameLength mirrors trigger.MaxNameLength (not imported: this
	// package stays a leaf).
	maxTriggerNameLength = 63
)

// triggerPrefixRE accepts what can begin a trigger name: trigger names are
// lower-case letters, digits and '-', starting with a letter or digit.
var triggerPrefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// FieldError is one invalid field of a configuration, key request or token
// claim.
type FieldError struct {
	// Path locates the field, e.g. "jwt.issuer" or "scope.triggers[1]".
	Path string
	// Msg says what is wrong; it never contains a secret.
	Msg string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// FieldErrors lists every invalid field; it is what Validate methods return.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	s := ""
	for i, fe := range e {
		if i > 0 {
			s += "; "
		}
		s += fe.Error()
	}
	return s
}

func (e *FieldErrors) add(path, format string, args ...any) {
	*e = append(*e, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e FieldErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// ValidateRoles checks a role list: at least one role, each known, none
// twice. path prefixes the field paths of the errors ("roles").
func ValidateRoles(path string, roles []Role) error {
	var errs FieldErrors
	validateRoles(&errs, path, roles)
	return errs.err()
}

func validateRoles(errs *FieldErrors, path string, roles []Role) {
	if len(roles) == 0 {
		errs.add(path, "at least one role is needed (%s)", roleList())
	}
	for i, r := range roles {
		p := fmt.Sprintf("%s[%d]", path, i)
		if !ValidRole(r) {
			errs.add(p, "unknown role %q (%s)", r, roleList())
		} else if slices.Index(roles, r) < i {
			errs.add(p, "role %q is listed twice", r)
		}
	}
}

func roleList() string {
	s := "one of"
	for i, r := range Roles() {
		if i > 0 {
			s += ","
		}
		s += " " + string(r)
	}
	return s
}

// Validate checks the scope: at most MaxScopePrefixes prefixes per
// dimension, none empty; source and type prefixes at most MaxPrefixLength
// bytes of valid UTF-8 without control characters; trigger prefixes made of
// what trigger names are made of. path prefixes the field paths ("scope").
func (s Scope) Validate(path string) error {
	var errs FieldErrors
	s.validate(&errs, path)
	return errs.err()
}

func (s Scope) validate(errs *FieldErrors, path string) {
	check := func(name string, list []string, one func(p, v string)) {
		if len(list) > MaxScopePrefixes {
			errs.add(path+"."+name, "at most %d prefixes, got %d", MaxScopePrefixes, len(list))
			return
		}
		for i, v := range list {
			p := fmt.Sprintf("%s.%s[%d]", path, name, i)
			if v == "" {
				errs.add(p, "a prefix cannot be empty (leave the list empty for no restriction)")
				continue
			}
			if slices.Index(list, v) < i {
				errs.add(p, "prefix %q is listed twice", v)
				continue
			}
			one(p, v)
		}
	}
	attr := func(p, v string) {
		switch {
		case len(v) > MaxPrefixLength:
			errs.add(p, "a prefix has at most %d bytes, got %d", MaxPrefixLength, len(v))
		case !utf8.ValidString(v):
			errs.add(p, "not valid UTF-8")
		case hasControl(v):
			errs.add(p, "control characters are not allowed")
		}
	}
	check("sources", s.Sources, attr)
	check("types", s.Types, attr)
	check("triggers", s.Triggers, func(p, v string) {
		if len(v) > maxTriggerNameLength || !triggerPrefixRE.MatchString(v) {
			errs.add(p, "%q cannot begin a trigger name: use up to %d lower-case letters, digits and '-', starting with a letter or digit", v, maxTriggerNameLength)
		}
	})
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
