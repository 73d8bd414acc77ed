package egress

import (
	"net/netip"
	"testing"
)

// FuzzAllowEntry: parsing never panics, and an accepted address or prefix
// entry opens the address it names.
func FuzzAllowEntry(f *testing.F) {
	for _, s := range []string{"10.1.0.0/16", "fn.internal:443", "10.2.3.4", "[fd00::1]:443", "fd00::/8", "127.1:80",
		"0x7f.1:80", "fe80::1%eth0/64", "::ffff:127.0.0.1", "a..b:1", "x:65535", "[::1]:0", "/", "::/0", "0.0.0.0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		g, err := New(Config{AllowTargets: []string{entry}})
		if err != nil {
			return
		}
		if a, err := netip.ParseAddr(entry); err == nil {
			if err := g.Check(a.String(), a, 80); err != nil {
				t.Fatalf("entry %q does not open its own address: %v", entry, err)
			}
		}
		if p, err := netip.ParsePrefix(entry); err == nil {
			if err := g.Check("x", p.Masked().Addr(), 80); err != nil {
				t.Fatalf("prefix %q does not open its first address: %v", entry, err)
			}
		}
	})
}

// FuzzCheckLiteral: never panics; a refusal is a ForbiddenError for a
// denied address; an IPv4 address and its IPv4-mapped IPv6 form get the
// same verdict.
func FuzzCheckLiteral(f *testing.F) {
	for _, s := range []string{"169.254.169.254:80", "[::ffff:a9fe:a9fe]:80", "localhost:1", "example.com:443", "[fe80::1%25eth0]:80",
		"127.1:80", "0x7f000001:80", "[::]:1", "8.8.8.8:53", "[64:ff9b::7f00:1]:80", "[2002:a9fe:a9fe::]:80"} {
		f.Add(s)
	}
	g, err := New(Config{AllowTargets: []string{"10.1.0.0/16"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		err := g.CheckLiteral(target)
		var fe *ForbiddenError
		if err != nil && IsForbidden(err) {
			if !asForbidden(err, &fe) {
				t.Fatalf("ErrForbidden without a *ForbiddenError: %v", err)
			}
			if _, denied := Classify(fe.Addr); !denied {
				t.Fatalf("refused %s, which is not in a denied range", fe.Addr)
			}
		}
	})
}

func asForbidden(err error, fe **ForbiddenError) bool {
	e, ok := err.(*ForbiddenError)
	*fe = e
	return ok
}

// FuzzClassifyMapped: the IPv4-mapped form of an address is classified as
// the address.
func FuzzClassifyMapped(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Add([]byte{169, 254, 169, 254})
	f.Add([]byte{8, 8, 8, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b))
		mapped := netip.AddrFrom16(v4.As16())
		r1, d1 := Classify(v4)
		r2, d2 := Classify(mapped)
		if r1 != r2 || d1 != d2 {
			t.Fatalf("%s: %q %v, mapped %s: %q %v", v4, r1, d1, mapped, r2, d2)
		}
		var nat [16]byte
		copy(nat[:], netip.MustParseAddr("64:ff9b::").AsSlice())
		copy(nat[12:], b)
		r3, d3 := Classify(netip.AddrFrom16(nat))
		if r1 != r3 || d1 != d3 {
			t.Fatalf("%s: %q %v, NAT64: %q %v", v4, r1, d1, r3, d3)
		}
	})
}
