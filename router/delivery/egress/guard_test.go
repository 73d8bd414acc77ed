package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testdns"
)

func TestClassify(t *testing.T) {
	denied := map[string]Range{
		"127.0.0.1":              Loopback,
		"127.255.255.254":        Loopback,
		"::1":                    Loopback,
		"::ffff:127.0.0.1":       Loopback,
		"::ffff:7f00:2":          Loopback,
		"::127.0.0.1":            Loopback, // IPv4-compatible
		"64:ff9b::127.0.0.1":     Loopback, // NAT64
		"2002:7f00:1::":          Loopback, // 6to4
		"169.254.169.254":        LinkLocal,
		"::ffff:a9fe:a9fe":       LinkLocal,
		"::ffff:169.254.169.254": LinkLocal,
		"64:ff9b::a9fe:a9fe":     LinkLocal,
		"fe80::1":                LinkLocal,
		"fe80::1%eth0":           LinkLocal,
		"febf::1":                LinkLocal,
		"10.0.0.1":               Private,
		"::ffff:10.1.2.3":        Private,
		"172.16.0.1":             Private,
		"172.31.255.255":         Private,
		"192.168.1.1":            Private,
		"fc00::1":                Private,
		"fd12:3456::1":           Private,
		"fec0::1":                Private,
		"100.64.0.1":             SharedCGNAT,
		"100.127.255.255":        SharedCGNAT,
		"0.0.0.0":                Unspecified,
		"0.1.2.3":                Unspecified,
		"::":                     Unspecified,
		"::ffff:0.0.0.0":         Unspecified,
		"224.0.0.1":              Multicast,
		"239.255.255.250":        Multicast,
		"ff02::1":                Multicast,
		"::ffff:224.0.0.251":     Multicast,
		"255.255.255.255":        Broadcast,
		"::ffff:255.255.255.255": Broadcast,
		"240.0.0.1":              Reserved,
		"64:ff9b:1::1":           Reserved,
	}
	for a, want := range denied {
		got, d := Classify(netip.MustParseAddr(a))
		require.True(t, d, "%s must be denied", a)
		require.Equal(t, want, got, a)
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "100.63.255.255",
		"169.255.0.1", "11.0.0.1", "192.169.0.1", "223.255.255.255", "::ffff:8.8.8.8", "2606:4700:4700::1111",
		"64:ff9b::808:808", "2002:808:808::1", "2001:db8::1"} {
		r, d := Classify(netip.MustParseAddr(a))
		require.False(t, d, "%s must be allowed, got %s", a, r)
	}
	r, d := Classify(netip.Addr{})
	require.True(t, d)
	require.Equal(t, Unspecified, r)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{AllowTargets: []string{"10.1.0.0/16", " fn.internal:443", "10.2.3.4", "10.2.3.5:80", "[fd00::1]:443", "fd00::/8", "FN.Example.:8080"}}.Validate())
	bad := map[string]string{
		"":                    "empty",
		"10.1.0.0/33":         "CIDR",
		"fn.internal":         "neither",
		"fn.internal:0":       "port",
		"fn.internal:65536":   "port",
		"fn.internal:+1":      "port",
		"fn..internal:443":    "host name",
		"-fn.internal:443":    "host name",
		"fn_ok.x-:443":        "host name",
		"127.1:80":            "numeric",
		"0x7f.0.0.1:80":       "numeric",
		"2130706433:80":       "numeric",
		"fe80::1%eth0/64":     "zone",
		":443":                "no host",
		"http://fn:443":       "not a CIDR",
		"fn.internal:443:443": "neither",
	}
	for e, want := range bad {
		err := Config{AllowTargets: []string{e}}.Validate()
		require.ErrorContains(t, err, want, "%q", e)
		require.ErrorContains(t, err, "allow targets[0]")
		_, err = New(Config{AllowTargets: []string{"10.0.0.0/8", e}})
		require.ErrorContains(t, err, "allow targets[1]", "%q", e)
	}
}

func TestCheckLiteral(t *testing.T) {
	strict, err := New(Config{AllowTargets: []string{"10.1.0.0/16", "10.2.3.4:8443", "fn.internal:443", "127.0.0.3"}})
	require.NoError(t, err)
	loop, err := New(Config{AllowLoopback: true})
	require.NoError(t, err)
	cases := []struct {
		g      *Guard
		target string
		ok     bool
		rng    Range
	}{
		{strict, "169.254.169.254:80", false, LinkLocal},
		{strict, "[::ffff:169.254.169.254]:80", false, LinkLocal},
		{strict, "[::ffff:a9fe:a9fe]:80", false, LinkLocal},
		{strict, "127.0.0.2:6379", false, Loopback},
		{strict, "[::ffff:127.0.0.2]:6379", false, Loopback},
		{strict, "[::1]:9090", false, Loopback},
		{strict, "localhost:9090", false, Loopback},
		{strict, "api.localhost.:9090", false, Loopback},
		{strict, "10.3.0.1:80", false, Private},
		{strict, "10.2.3.4:80", false, Private},
		{strict, "[fe80::1%25eth0]:80", false, LinkLocal},
		{strict, "[fe80::1%eth0]:80", false, LinkLocal},
		{strict, "0.0.0.0:8080", false, Unspecified},
		{strict, "100.100.100.200:80", false, SharedCGNAT},
		{strict, "10.1.200.3:80", true, ""},
		{strict, "[::ffff:10.1.200.3]:80", true, ""},
		{strict, "10.2.3.4:8443", true, ""},
		{strict, "127.0.0.3:6379", true, ""},
		{strict, "[::ffff:127.0.0.3]:6379", true, ""},
		{strict, "127.0.0.1:6379", false, Loopback},
		{strict, "fn.internal:443", true, ""},
		{strict, "Fn.Internal.:443", true, ""},
		{strict, "fn.internal:8443", true, ""}, // a name: checked at dial time
		{strict, "8.8.8.8:443", true, ""},
		{strict, "example.com:443", true, ""},
		{loop, "127.0.0.2:6379", true, ""},
		{loop, "[::1]:6379", true, ""},
		{loop, "[::ffff:127.0.0.1]:6379", true, ""},
		{loop, "localhost:80", true, ""},
		{loop, "169.254.169.254:80", false, LinkLocal},
		{nil, "169.254.169.254:80", true, ""},
	}
	for _, c := range cases {
		err := c.g.CheckLiteral(c.target)
		if c.ok {
			require.NoError(t, err, c.target)
			continue
		}
		var fe *ForbiddenError
		require.ErrorAs(t, err, &fe, c.target)
		require.ErrorIs(t, err, ErrForbidden)
		require.True(t, IsForbidden(err))
		require.Equal(t, c.rng, fe.Range, c.target)
	}
	for _, bad := range []string{"127.1:80", "0x7f000001:80", "fn.internal", "fn:0", "a b:80"} {
		err := strict.CheckLiteral(bad)
		require.Error(t, err, bad)
		require.False(t, IsForbidden(err), "%q is malformed, not forbidden", bad)
	}
}

// countingListener accepts connections and counts them.
type countingListener struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func listen(t *testing.T, addr string) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	l := &countingListener{ln: ln}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); l.wg.Wait() })
	return l
}

func (l *countingListener) port() string {
	_, p, _ := net.SplitHostPort(l.ln.Addr().String())
	return p
}

// noneSince proves that l accepted no connection beyond want: it connects
// once more without any guard and waits for that connection to be counted.
// Connections are accepted in order, so one made earlier would have been
// counted first.
func (l *countingListener) noneSince(t *testing.T, want int64) {
	t.Helper()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	require.NoError(t, err)
	_ = c.Close()
	require.Eventually(t, func() bool { return l.accepted.Load() >= want+1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, want+1, l.accepted.Load(), "a refused dial reached %s", l.ln.Addr())
}

// samePortListeners listens on 127.0.0.1 and 127.0.0.2 at one port.
func samePortListeners(t *testing.T) (one, two *countingListener) {
	t.Helper()
	for range 20 {
		two = listen(t, "127.0.0.2:0")
		ln, err := net.Listen("tcp", "127.0.0.1:"+two.port())
		if err != nil {
			continue
		}
		_ = ln.Close()
		one = listen(t, "127.0.0.1:"+two.port())
		return one, two
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

func TestDialChecksResolvedAddresses(t *testing.T) {
	one, two := samePortListeners(t)
	port := two.port()
	dns := testdns.Start(t)
	dns.Set("ok.test", "127.0.0.1")
	dns.Set("inside.test", "127.0.0.2")
	dns.Set("mixed.test", "127.0.0.2", "127.0.0.1")
	dns.Set("mapped.test", "::ffff:127.0.0.2")
	dns.Set("opened.test", "127.0.0.2")
	g, err := New(Config{AllowTargets: []string{"127.0.0.1/32", "opened.test:" + port}, Resolver: dns.Resolver()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func(addr string) error {
		c, err := g.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	var fe *ForbiddenError
	for _, target := range []string{"inside.test:" + port, "mapped.test:" + port, "127.0.0.2:" + port, "[::ffff:127.0.0.2]:" + port, "[::ffff:7f00:2]:" + port} {
		err := dial(target)
		require.ErrorAs(t, err, &fe, target)
		require.Equal(t, Loopback, fe.Range)
		if _, perr := netip.ParseAddrPort(target); perr != nil {
			require.NotContains(t, err.Error(), "127.0.0.2", "the resolved address of a name stays out of messages")
		}
	}
	require.ErrorContains(t, dial("inside.test:"+port), `"inside.test" resolves only to loopback`)
	require.ErrorContains(t, dial("127.0.0.2:"+port), "127.0.0.2 is a loopback address")
	two.noneSince(t, 0)

	// Allowed by the prefix; a name with a denied and an allowed address
	// reaches only the allowed one.
	require.NoError(t, dial("ok.test:"+port))
	require.NoError(t, dial("mixed.test:"+port))
	require.NoError(t, dial("127.0.0.1:"+port))
	require.NoError(t, dial("[::ffff:127.0.0.1]:"+port))
	require.Eventually(t, func() bool { return one.accepted.Load() == 4 }, 5*time.Second, time.Millisecond)
	two.noneSince(t, 1)

	// A name entry opens that name at that port, whatever it resolves to.
	require.NoError(t, dial("opened.test:"+port))
	require.Eventually(t, func() bool { return two.accepted.Load() == 3 }, 5*time.Second, time.Millisecond)

	// Unknown names are a resolution error, not a refusal.
	err = dial("nowhere.test:" + port)
	require.Error(t, err)
	require.False(t, IsForbidden(err))
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
}

// A name that resolved to an allowed address and then to a denied one (DNS
// rebinding) reaches the denied one never: every dial resolves and checks
// again, and connects to the address it checked.
func TestDialDNSRebinding(t *testing.T) {
	one, two := samePortListeners(t)
	port := two.port()
	dns := testdns.Start(t)
	g, err := New(Config{AllowTargets: []string{"127.0.0.1"}, Resolver: dns.Resolver()})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 6 {
		if i%2 == 0 {
			dns.Set("rebind.test", "127.0.0.1")
		} else {
			dns.Set("rebind.test", "127.0.0.2")
		}
		c, err := g.DialContext(ctx, "tcp", "rebind.test:"+port)
		if i%2 == 0 {
			require.NoError(t, err)
			_ = c.Close()
		} else {
			require.ErrorIs(t, err, ErrForbidden)
		}
	}
	require.Equal(t, 6, dns.Asked("rebind.test")/2, "resolved at every dial (A and AAAA)")
	require.Eventually(t, func() bool { return one.accepted.Load() == 3 }, 5*time.Second, time.Millisecond)
	two.noneSince(t, 0)
}

func TestAllowLoopbackAndNilGuard(t *testing.T) {
	l := listen(t, "127.0.0.2:0")
	g, err := New(Config{AllowLoopback: true})
	require.NoError(t, err)
	for _, dial := range []func(context.Context, string, string) (net.Conn, error){g.DialContext, (*Guard)(nil).DialContext} {
		c, err := dial(context.Background(), "tcp", l.ln.Addr().String())
		require.NoError(t, err)
		_ = c.Close()
	}
	require.Eventually(t, func() bool { return l.accepted.Load() == 2 }, 5*time.Second, time.Millisecond)
	g2, err := New(Config{AllowLoopback: true})
	require.NoError(t, err)
	_, err = g2.DialContext(context.Background(), "tcp", "169.254.169.254:80")
	require.ErrorIs(t, err, ErrForbidden)
}

// The control hook refuses a socket whose address is denied, for clients
// that take a net.Dialer.
func TestControlHook(t *testing.T) {
	l := listen(t, "127.0.0.2:0")
	g, err := New(Config{})
	require.NoError(t, err)
	d := net.Dialer{Control: g.Control}
	_, err = d.Dial("tcp", l.ln.Addr().String())
	require.ErrorIs(t, err, ErrForbidden)
	l.noneSince(t, 0)
	require.NoError(t, (*Guard)(nil).Control("tcp", "127.0.0.1:1", nil))
	require.Error(t, g.Control("tcp", "not an address", nil))
}

func TestForbiddenErrorThroughWrapping(t *testing.T) {
	g, err := New(Config{})
	require.NoError(t, err)
	_, err = g.DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(1))
	wrapped := &net.OpError{Op: "dial", Net: "tcp", Err: err}
	require.True(t, errors.Is(wrapped, ErrForbidden))
	_, err = g.DialContext(context.Background(), "tcp", "no-port")
	require.Error(t, err)
	require.False(t, IsForbidden(err))
}
