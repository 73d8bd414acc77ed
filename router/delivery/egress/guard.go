package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Guard checks target addresses (see the package documentation). It is
// immutable and safe for concurrent use. A nil *Guard allows everything.
type Guard struct {
	allow    allowlist
	loopback bool
	resolver Resolver
}

// New returns a Guard for cfg, or the errors of its allowlist.
func New(cfg Config) (*Guard, error) {
	al, err := parseAllowlist(cfg.AllowTargets)
	if err != nil {
		return nil, err
	}
	g := &Guard{allow: al, loopback: cfg.AllowLoopback, resolver: cfg.Resolver}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	return g, nil
}

// Check returns a *ForbiddenError when a connection to addr:port, asked
// for as host (a name, or addr itself), is not allowed.
func (g *Guard) Check(host string, addr netip.Addr, port uint16) error {
	if g == nil {
		return nil
	}
	return g.check(host, g.hostAllowed(host, port), addr, port)
}

func (g *Guard) check(host string, hostAllowed bool, addr netip.Addr, port uint16) error {
	if hostAllowed {
		return nil
	}
	r, denied := Classify(addr)
	if !denied || r == Loopback && g.loopback {
		return nil
	}
	a := addr.WithZone("")
	if g.allow.addrs[netip.AddrPortFrom(a, port)] {
		return nil
	}
	for _, p := range g.allow.prefixes {
		if p.Contains(a) {
			return nil
		}
	}
	if v4, ok := embeddedV4(a); ok && v4 != a {
		if g.allow.addrs[netip.AddrPortFrom(v4, port)] {
			return nil
		}
		for _, p := range g.allow.prefixes {
			if p.Contains(v4) {
				return nil
			}
		}
	}
	return &ForbiddenError{Host: host, Addr: addr, Range: r}
}

// hostAllowed reports whether the allowlist names host:port (a name entry).
func (g *Guard) hostAllowed(host string, port uint16) bool {
	return len(g.allow.hosts) > 0 && g.allow.hosts[hostKey(host, port)]
}

// CheckLiteral checks a target's host:port when its host is an address or
// a name that always means loopback ("localhost", "*.localhost", RFC 6761),
// so that a trigger naming a forbidden address is refused when it is
// applied. Other names pass: they are checked when connecting. A host in a
// numeric form other than dotted-quad ("127.1", "0x7f000001") is refused,
// since resolvers disagree on what it means. A nil Guard allows every
// target.
func (g *Guard) CheckLiteral(hostport string) error {
	if g == nil {
		return nil
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hostport, err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return g.Check(host, a, port)
	}
	if g.hostAllowed(host, port) {
		return nil
	}
	if err := ValidHostname(host); err != nil {
		return err
	}
	if n := strings.TrimSuffix(strings.ToLower(host), "."); n == "localhost" || strings.HasSuffix(n, ".localhost") {
		return g.check(host, false, netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
	}
	return nil
}

// DialContext connects to address ("host:port") over network ("tcp",
// "tcp4", "tcp6", or the udp ones) like net.Dialer.DialContext, but only to
// addresses the guard allows: it resolves host itself, refuses the denied
// addresses, and dials the others in turn with a control hook that checks
// each socket's address again. When every address is refused it returns a
// *ForbiddenError and connects nothing. Its signature fits
// http.Transport.DialContext; grpc.WithContextDialer takes it with the
// network fixed to "tcp". A nil Guard dials address as it is.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if g == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	host, port, err := splitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("egress: %q is not host:port: %w", address, err)}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = g.resolver.LookupNetIP(ctx, lookupNetwork(network), host)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
	}
	hostAllowed := g.hostAllowed(host, port)
	var refused *ForbiddenError
	allowed := addrs[:0:0]
	for _, a := range addrs {
		if err := g.check(host, hostAllowed, a, port); err != nil {
			if refused == nil {
				refused = err.(*ForbiddenError)
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if refused == nil { // the resolver answered nothing
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		return nil, refused
	}
	d := net.Dialer{ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		// The address about to be connected, checked again: no path
		// through this dialer reaches an address that was not checked.
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("egress: unexpected socket address %q", address)
		}
		return g.check(host, hostAllowed, ap.Addr(), ap.Port())
	}}
	var first error
	for _, a := range allowed {
		if a.Is4In6() {
			a = a.Unmap()
		}
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, port).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// Control is a net.Dialer control hook that refuses sockets to forbidden
// addresses, for clients that resolve names themselves and take a
// net.Dialer but no dial function. It sees addresses only, so host:port
// entries of the allowlist do not apply; prefer DialContext.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	if g == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: unexpected socket address %q", address)
	}
	return g.check(ap.Addr().String(), false, ap.Addr(), ap.Port())
}

// IsForbidden reports whether err is, or wraps, a refusal by a Guard.
func IsForbidden(err error) bool { return errors.Is(err, ErrForbidden) }

func lookupNetwork(network string) string {
	switch {
	case strings.HasSuffix(network, "4"):
		return "ip4"
	case strings.HasSuffix(network, "6"):
		return "ip6"
	}
	return "ip"
}
