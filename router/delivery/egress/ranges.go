package egress

import "net/netip"

// Range names a class of addresses that targets may not reach by default.
type Range string

// The denied ranges. Every one of them is reachable from the server but not
// from the internet at large, so a target there is the server's own
// neighbourhood, not a function's public endpoint.
const (
	// Loopback: 127.0.0.0/8, ::1. The server itself: its Redis, its API.
	Loopback Range = "loopback"
	// LinkLocal: 169.254.0.0/16 (the cloud metadata service at
	// 169.254.169.254), fe80::/10.
	LinkLocal Range = "link-local"
	// Private: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7 and the
	// deprecated site-local fec0::/10.
	Private Range = "private"
	// SharedCGNAT: 100.64.0.0/10, carrier-grade NAT and, in several clouds,
	// internal service addresses.
	SharedCGNAT Range = "shared (CGNAT)"
	// Unspecified: 0.0.0.0/8 ("this network"; Linux connects 0.0.0.0 to
	// loopback) and ::.
	Unspecified Range = "unspecified"
	// Multicast: 224.0.0.0/4, ff00::/8.
	Multicast Range = "multicast"
	// Broadcast: 255.255.255.255.
	Broadcast Range = "broadcast"
	// Reserved: 240.0.0.0/4 (class E) and the local-use NAT64 prefix
	// 64:ff9b:1::/48, which translates to whatever the operator's NAT64
	// gateway routes it to.
	Reserved Range = "reserved"
)

var (
	v4Denied = []struct {
		p netip.Prefix
		r Range
	}{
		{netip.MustParsePrefix("255.255.255.255/32"), Broadcast},
		{netip.MustParsePrefix("0.0.0.0/8"), Unspecified},
		{netip.MustParsePrefix("10.0.0.0/8"), Private},
		{netip.MustParsePrefix("100.64.0.0/10"), SharedCGNAT},
		{netip.MustParsePrefix("127.0.0.0/8"), Loopback},
		{netip.MustParsePrefix("169.254.0.0/16"), LinkLocal},
		{netip.MustParsePrefix("172.16.0.0/12"), Private},
		{netip.MustParsePrefix("192.168.0.0/16"), Private},
		{netip.MustParsePrefix("224.0.0.0/4"), Multicast},
		{netip.MustParsePrefix("240.0.0.0/4"), Reserved},
	}
	v6Denied = []struct {
		p netip.Prefix
		r Range
	}{
		{netip.MustParsePrefix("::/128"), Unspecified},
		{netip.MustParsePrefix("::1/128"), Loopback},
		{netip.MustParsePrefix("64:ff9b:1::/48"), Reserved},
		{netip.MustParsePrefix("fc00::/7"), Private},
		{netip.MustParsePrefix("fe80::/10"), LinkLocal},
		{netip.MustParsePrefix("fec0::/10"), Private},
		{netip.MustParsePrefix("ff00::/8"), Multicast},
	}
	// IPv6 prefixes that carry an IPv4 address, and where: a connection to
	// one of them may end at that IPv4 address (a dual-stack socket for
	// IPv4-mapped, a NAT64 gateway, a 6to4 relay), so it is judged as that
	// address.
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	compatible = netip.MustParsePrefix("::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// Classify reports whether a is in a denied range, and which. An IPv6
// address that embeds an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, the
// deprecated IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4
// 2002:aabb:ccdd::) is judged as the IPv4 address it embeds. The zone of a
// scoped address is ignored. An invalid address is denied as Unspecified.
func Classify(a netip.Addr) (Range, bool) {
	if !a.IsValid() {
		return Unspecified, true
	}
	a = a.WithZone("")
	if a.Is6() {
		for _, d := range v6Denied {
			if d.p.Contains(a) {
				return d.r, true
			}
		}
	}
	if v4, ok := embeddedV4(a); ok {
		a = v4
	}
	if !a.Is4() {
		return "", false
	}
	for _, d := range v4Denied {
		if d.p.Contains(a) {
			return d.r, true
		}
	}
	return "", false
}

// embeddedV4 returns the IPv4 address a is or carries (see Classify).
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	switch {
	case a.Is4():
		return a, true
	case a.Is4In6():
		return a.Unmap(), true
	case nat64.Contains(a), compatible.Contains(a):
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
