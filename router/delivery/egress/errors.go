package egress

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrForbidden matches every *ForbiddenError (errors.Is).
var ErrForbidden = errors.New("egress: target address forbidden")

// ForbiddenError reports an address the guard refused. Nothing was
// connected.
type ForbiddenError struct {
	// Host is the host as the target names it: an address or a name.
	Host string
	// Addr is the address refused (for a name, the first of those it
	// resolved to; every one of them was refused).
	Addr netip.Addr
	// Range is the denied range Addr is in.
	Range Range
}

// Error says what was refused without the resolved address of a name: the
// message reaches dead letters, which the trigger's author may read, and
// the addresses behind internal names are not theirs to learn.
func (e *ForbiddenError) Error() string {
	if a, err := netip.ParseAddr(e.Host); err == nil && a == e.Addr {
		return fmt.Sprintf("egress: %s is a %s address, which targets may not reach unless the server's target allowlist opens it", e.Host, e.Range)
	}
	return fmt.Sprintf("egress: %q resolves only to %s (or other denied) addresses, which targets may not reach unless the server's target allowlist opens them", e.Host, e.Range)
}

// Is makes errors.Is(err, ErrForbidden) hold.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }
