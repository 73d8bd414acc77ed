package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Config configures a Guard. The zero value denies every range Classify
// names and allows every other address.
type Config struct {
	// AllowTargets opens addresses the denied ranges would refuse, for the
	// functions a platform runs on its own network. Each entry is one of:
	//   - a CIDR prefix ("10.1.0.0/16", "fd00:1::/64"): any port;
	//   - an address ("10.1.2.3", "::1"): any port;
	//   - address:port ("10.1.2.3:8443", "[fd00::1]:443");
	//   - host:port ("fn.internal:443"): that name, at that port, whatever
	//     it resolves to. The name is trusted with its DNS: allow only names
	//     whose records the operator controls.
	// An address entry matches an IPv6 address that embeds it too (see
	// Classify), so "127.0.0.1" also opens ::ffff:127.0.0.1.
	AllowTargets []string
	// AllowLoopback opens the loopback range (127.0.0.0/8, ::1, and their
	// IPv6 forms), for a server whose functions run on the same machine (the
	// quickstart). It also opens the server's own listeners to its triggers.
	AllowLoopback bool
	// Resolver resolves target names (net.DefaultResolver when nil).
	Resolver Resolver
}

// Resolver looks up a name's addresses; *net.Resolver implements it.
type Resolver interface {
	// LookupNetIP returns the addresses of host for network "ip", "ip4"
	// or "ip6".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Validate reports every invalid allowlist entry.
func (c Config) Validate() error {
	_, err := parseAllowlist(c.AllowTargets)
	return err
}

// allowlist is AllowTargets parsed.
type allowlist struct {
	prefixes []netip.Prefix
	addrs    map[netip.AddrPort]bool
	hosts    map[string]bool // "name:port", name lower-case without a trailing dot
}

func parseAllowlist(entries []string) (allowlist, error) {
	al := allowlist{addrs: map[netip.AddrPort]bool{}, hosts: map[string]bool{}}
	var errs []error
	for i, e := range entries {
		if err := al.add(strings.TrimSpace(e)); err != nil {
			errs = append(errs, fmt.Errorf("allow targets[%d]: %w", i, err))
		}
	}
	return al, errors.Join(errs...)
}

// add parses one allowlist entry (see Config.AllowTargets).
func (al *allowlist) add(e string) error {
	if e == "" {
		return errors.New("empty entry")
	}
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR prefix: %w", e, err)
		}
		if p.Addr().Zone() != "" {
			return fmt.Errorf("%q: a prefix cannot carry a zone", e)
		}
		al.prefixes = append(al.prefixes, p.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(e); err == nil {
		al.prefixes = append(al.prefixes, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
		return nil
	}
	host, port, err := splitHostPort(e)
	if err != nil {
		return fmt.Errorf("%q is neither a CIDR prefix, an address, address:port nor host:port: %w", e, err)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		al.addrs[netip.AddrPortFrom(a.WithZone(""), port)] = true
		return nil
	}
	if err := ValidHostname(host); err != nil {
		return fmt.Errorf("%q: %w", e, err)
	}
	al.hosts[hostKey(host, port)] = true
	return nil
}

// splitHostPort splits "host:port" with a port from 1 to 65535.
func splitHostPort(hp string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 || ps[0] == '+' {
		return "", 0, fmt.Errorf("invalid port %q", ps)
	}
	return host, uint16(p), nil
}

func hostKey(host string, port uint16) string {
	return strings.TrimSuffix(strings.ToLower(host), ".") + ":" + strconv.Itoa(int(port))
}

// ValidHostname checks a DNS name: labels of letters, digits, '-' and '_'
// (service records), 1 to 63 bytes each, 253 in all, an optional trailing
// dot. A name made only of digits, dots and hexadecimal forms ("127.1",
// "0x7f.0.0.1", "2130706433") is refused: C resolvers read those as
// addresses, so a name check would be judging a different host than the
// one connected to.
func ValidHostname(h string) error {
	n := strings.TrimSuffix(h, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("%q is not a valid host name", h)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
				c == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	if numericHost(n) {
		return fmt.Errorf("%q looks like a numeric address but is not one in dotted-quad form; write the address as a.b.c.d", h)
	}
	return nil
}

// numericHost reports whether every label of n is a decimal, octal or
// hexadecimal number, the forms inet_aton accepts as an IPv4 address.
func numericHost(n string) bool {
	for _, label := range strings.Split(n, ".") {
		l := strings.ToLower(label)
		if strings.HasPrefix(l, "0x") {
			l = l[2:]
			if l == "" {
				continue // "0x" alone is 0 to inet_aton
			}
			for i := 0; i < len(l); i++ {
				if !(l[i] >= '0' && l[i] <= '9' || l[i] >= 'a' && l[i] <= 'f') {
					return false
				}
			}
			continue
		}
		for i := 0; i < len(l); i++ {
			if l[i] < '0' || l[i] > '9' {
				return false
			}
		}
	}
	return true
}
