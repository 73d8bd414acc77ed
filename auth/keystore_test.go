package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newClient opens a client of its own to the real Redis (each "replica" has
// its own connection pool, as separate processes would).
func newClient(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newAuthenticator(t *testing.T, cfg Config, rdb redis.UniversalClient) *Authenticator {
	t.Helper()
	a, err := New(cfg, rdb, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func bearer(tok string) Credentials { return Credentials{Bearer: tok, Remote: "127.0.0.1:5555"} }

func TestAPIKeyLifecycle(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	a := newAuthenticator(t, Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken}, b.Client)
	admin, err := a.Authenticate(ctx, bearer(testAdminToken))
	if err != nil || admin.Method != MethodBootstrap || admin.Subject != BootstrapSubject || admin.Remote != "127.0.0.1:5555" {
		t.Fatalf("bootstrap admin: %+v, %v", admin, err)
	}
	store := a.Keys()
	spec := KeySpec{Name: "ci-publisher", Roles: []Role{RolePublisher}, Scope: Scope{Sources: []string{"/shop/"}, Types: []string{"com.shop."}}, TTL: time.Hour}
	key, info, err := store.Create(ctx, admin, spec)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != spec.Name || info.CreatedBy != BootstrapSubject || info.Expires.Sub(info.Created) != time.Hour || !strings.Contains(key, info.ID) {
		t.Fatalf("info %+v", info)
	}
	_, secret, _ := ParseAPIKey(key)

	// Only a hash is stored: no Redis value holds the secret.
	keys, _ := b.Client.Keys(ctx, b.Prefix+":*").Result()
	for _, k := range keys {
		dump, _ := b.Client.Do(ctx, "DUMP", k).Text()
		if strings.Contains(dump, secret) {
			t.Fatalf("the secret is stored in %s", k)
		}
		if !strings.HasPrefix(k, b.Prefix+":{auth}:") {
			t.Fatalf("key %s is outside the {auth} slot", k)
		}
	}

	id, err := a.Authenticate(ctx, bearer(key))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "ci-publisher" || id.Method != MethodAPIKey || id.Remote != "127.0.0.1:5555" || !id.Expires.Equal(info.Expires) {
		t.Fatalf("identity %+v", id)
	}
	if err := id.AllowPublish("/shop/orders", "com.shop.order"); err != nil {
		t.Fatal(err)
	}
	if err := id.AllowPublish("/bank/x", "com.shop.order"); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("out of scope: %v", err)
	}
	if err := id.Allow(PermTriggersWrite); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("publisher may write triggers: %v", err)
	}
	// Handing out a cached identity must not let a caller change the cache.
	id.Roles[0] = RoleAdmin
	if again, _ := a.Authenticate(ctx, bearer(key)); again.Roles[0] != RolePublisher {
		t.Fatal("a caller changed the cached identity")
	}

	// The same id with another secret, and garbage, are refused alike.
	wrong := key[:len(key)-4] + "aaaa"
	if wrong == key {
		wrong = key[:len(key)-4] + "bbbb"
	}
	for _, k := range []string{wrong, "syk_x", key + "a"} {
		_, err := a.Authenticate(ctx, bearer(k))
		var ue *UnauthenticatedError
		if !errors.As(err, &ue) || ue.Method != MethodAPIKey {
			t.Fatalf("key %q: %v", k, err)
		}
		if strings.Contains(err.Error(), k[4:]) {
			t.Fatalf("the refusal echoes the key: %v", err)
		}
	}

	if _, _, err := store.Create(ctx, admin, spec); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := store.Create(ctx, admin, KeySpec{Name: "x", Roles: []Role{"root"}}); err == nil {
		t.Fatal("bad roles accepted")
	} else if fe := (FieldErrors{}); !errors.As(err, &fe) || fe[0].Path != "roles[0]" {
		t.Fatalf("bad roles: %v", err)
	}
	if _, _, err := store.Create(ctx, id, KeySpec{Name: "y", Roles: []Role{RolePublisher}}); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("a publisher created a key: %v", err)
	}

	_, _, err = store.Create(ctx, admin, KeySpec{Name: "viewer", Roles: []Role{RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List(ctx, admin)
	if err != nil || len(list) != 2 || list[0].Name != "ci-publisher" || list[1].Name != "viewer" || !list[1].Expires.IsZero() {
		t.Fatalf("list %+v, %v", list, err)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), secret) || strings.Contains(strings.ToLower(string(raw)), "hash") {
		t.Fatalf("a listing shows the secret or its hash: %s", raw)
	}

	if _, err := store.Revoke(ctx, admin, "ci-publisher"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := a.Authenticate(ctx, bearer(key))
		return errors.Is(err, ErrUnauthenticated)
	}, "the revoked key is refused")
	if _, err := store.Revoke(ctx, admin, "ci-publisher"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if list, _ := store.List(ctx, admin); len(list) != 1 {
		t.Fatalf("after revoke: %+v", list)
	}
}

func TestAPIKeyExpires(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	a := newAuthenticator(t, Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken}, b.Client)
	key, _, err := a.Keys().Create(ctx, Anonymous(), KeySpec{Name: "short", Roles: []Role{RoleViewer}, TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := a.Authenticate(ctx, bearer(key))
		return err != nil && strings.Contains(err.Error(), "expired")
	}, "the key expires")
}

// TestRevokedKeyRefusedBySecondReplica is the acceptance case: two
// authenticators on one Redis (two replicas), both have the key cached; a
// revocation through the first is honoured by the second within 2 s.
func TestRevokedKeyRefusedBySecondReplica(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	cfg := Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken}
	r1 := newAuthenticator(t, cfg, newClient(t))
	r2 := newAuthenticator(t, cfg, newClient(t))
	key, _, err := r1.Keys().Create(ctx, Anonymous(), KeySpec{Name: "tenant", Roles: []Role{RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Authenticator{r1, r2} {
		if _, err := r.Authenticate(ctx, bearer(key)); err != nil {
			t.Fatal(err)
		}
	}
	if r2.keys.cached() == 0 {
		t.Fatal("the second replica did not cache the key")
	}
	if _, err := r1.Keys().Revoke(ctx, Anonymous(), "tenant"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := r2.Authenticate(ctx, bearer(key))
		return errors.Is(err, ErrUnauthenticated)
	}, "the second replica refuses the revoked key")
	if d := time.Since(revoked); d > 2*time.Second {
		t.Fatalf("took %s", d)
	}
}

// countHook counts the commands a client sends, not counting connection
// handshakes.
type countHook struct {
	n    atomic.Int64
	mu   sync.Mutex
	cmds []string
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "hello" || n == "client" {
			return next(ctx, cmd) // a new connection's handshake
		}
		h.n.Add(1)
		h.mu.Lock()
		h.cmds = append(h.cmds, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestAPIKeyCacheSavesRoundTrips: a busy key costs Redis a revision read per
// half revocation delay, not a read per request; concurrent misses share one
// read.
func TestAPIKeyCacheSavesRoundTrips(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	c := newClient(t)
	hook := &countHook{}
	c.AddHook(hook)
	a := newAuthenticator(t, Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken,
		APIKeys: APIKeyConfig{RevocationDelay: Duration{time.Minute}}}, c)
	key, _, err := a.Keys().Create(ctx, Anonymous(), KeySpec{Name: "busy", Roles: []Role{RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	before := hook.n.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := a.Authenticate(ctx, bearer(key)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d verifications failed", failed.Load())
	}
	// One revision read and one record read, give or take a second
	// revision read if the first raced with the record read.
	if n := hook.n.Load() - before; n > 4 {
		t.Fatalf("1000 verifications sent %d commands to Redis: %v", n, hook.cmds)
	}
	// Garbage with a valid shape and an unknown id is cached as absent too.
	unknown, _ := newAPIKey()
	before = hook.n.Load()
	for range 100 {
		if _, err := a.Authenticate(ctx, bearer(unknown)); !errors.Is(err, ErrUnauthenticated) {
			t.Fatal(err)
		}
	}
	if n := hook.n.Load() - before; n > 2 {
		t.Fatalf("100 lookups of one unknown key sent %d commands", n)
	}
}

// TestAPIKeyCacheFailsClosed: a replica that can no longer read the revision
// stops trusting its cache after the revocation delay; the key is then
// "unavailable", never accepted on stale knowledge.
func TestAPIKeyCacheFailsClosed(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	proxy := newTCPProxy(t, strings.TrimPrefix(strings.TrimSuffix(testenv.RedisURL(), "/0"), "redis://"))
	c := redis.NewClient(&redis.Options{Addr: proxy.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	delay := 300 * time.Millisecond
	a := newAuthenticator(t, Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken,
		APIKeys: APIKeyConfig{RevocationDelay: Duration{delay}}}, c)
	key, _, err := NewKeyStore(b.Client, b.Prefix).Create(ctx, Anonymous(), KeySpec{Name: "k", Roles: []Role{RolePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	// The cache's last revision read starts after t0, so the key stays
	// usable until at least t0+delay, and not much longer.
	t0 := time.Now()
	if _, err := a.Authenticate(ctx, bearer(key)); err != nil {
		t.Fatal(err)
	}
	proxy.close()
	testenv.Eventually(t, 3*time.Second, func() bool {
		_, err := a.Authenticate(ctx, bearer(key))
		return errors.Is(err, ErrUnavailable)
	}, "the key is unavailable once the cache is stale")
	if d := time.Since(t0); d < delay {
		t.Fatalf("the cache was distrusted after %s, before the delay: the test proves nothing", d)
	}
	_, err = a.Authenticate(ctx, bearer(key))
	if errors.Is(err, ErrUnauthenticated) || err == nil {
		t.Fatalf("with Redis gone the key must be unavailable, not %v", err)
	}
}

// tcpProxy forwards loopback connections to Redis until closed, so a test
// can cut one client off while Redis keeps running for everyone else.
type tcpProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func TestScopedAdminManagesOnlyItsKeys(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	store := NewKeyStore(b.Client, b.Prefix)
	root := Anonymous()
	shopKey, _, err := store.Create(ctx, root, KeySpec{Name: "shop-admin", Roles: []Role{RoleAdmin}, Scope: Scope{Triggers: []string{"shop-"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Create(ctx, root, KeySpec{Name: "bank-admin", Roles: []Role{RoleAdmin}, Scope: Scope{Triggers: []string{"bank-"}}}); err != nil {
		t.Fatal(err)
	}
	a := newAuthenticator(t, Config{KeyPrefix: b.Prefix, AdminToken: testAdminToken}, b.Client)
	shop, err := a.Authenticate(ctx, bearer(shopKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Create(ctx, shop, KeySpec{Name: "shop-ci", Roles: []Role{RolePublisher}, Scope: Scope{Triggers: []string{"shop-ci-"}}}); err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]KeySpec{
		"unscoped":       {Name: "escape", Roles: []Role{RoleAdmin}},
		"foreign prefix": {Name: "escape2", Roles: []Role{RoleViewer}, Scope: Scope{Triggers: []string{"bank-"}}},
		"shorter prefix": {Name: "escape3", Roles: []Role{RoleViewer}, Scope: Scope{Triggers: []string{"sho"}}},
	} {
		if _, _, err := store.Create(ctx, shop, spec); !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("%s: %v", name, err)
		}
	}
	list, err := store.List(ctx, shop)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range list {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "shop-admin,shop-ci" {
		t.Fatalf("the shop admin lists %v", names)
	}
	if _, err := store.Revoke(ctx, shop, "bank-admin"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("the shop admin revoked the bank's key: %v", err)
	}
	if _, err := store.Revoke(ctx, shop, "shop-ci"); err != nil {
		t.Fatal(err)
	}
	if all, _ := store.List(ctx, root); len(all) != 2 {
		t.Fatalf("root lists %+v", all)
	}
}
