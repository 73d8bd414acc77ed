package auth

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestKeyCacheInvariants checks the cache's bookkeeping directly: a lookup
// that overlapped a revision change is not kept, the cache never outgrows
// its bound, and a revision change empties it.
func TestKeyCacheInvariants(t *testing.T) {
	b := testenv.Real(t)
	ctx := context.Background()
	store := NewKeyStore(b.Client, b.Prefix)
	key, info, err := store.Create(ctx, Anonymous(), KeySpec{Name: "k", Roles: []Role{RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	v := newKeyVerifier(store, time.Second, 3)
	defer v.close()

	// A read that began under generation 4 while the cache is at 5.
	v.mu.Lock()
	v.gen = 5
	v.mu.Unlock()
	f := &keyFlight{done: make(chan struct{})}
	v.wg.Add(1)
	v.readKey(info.ID, 4, f)
	if f.err != nil || !f.entry.found {
		t.Fatalf("the read itself failed: %+v %v", f.entry, f.err)
	}
	if v.cached() != 0 {
		t.Fatal("a lookup that overlapped a revision change was cached")
	}

	// Bounded: lookups of many unknown ids keep at most 3 entries.
	if _, err := v.verify(ctx, key); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		k, _ := newAPIKey()
		if _, err := v.verify(ctx, k); err == nil {
			t.Fatalf("unknown key %d accepted", i)
		}
		if n := v.cached(); n > 3 {
			t.Fatalf("the cache holds %d entries, bound 3", n)
		}
	}

	// A create elsewhere moves the revision: the next revision read drops
	// everything.
	if v.cached() == 0 {
		t.Fatal("nothing cached")
	}
	if _, _, err := store.Create(ctx, Anonymous(), KeySpec{Name: "other", Roles: []Role{RoleViewer}}); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.lastOK = time.Time{} // as if the delay had passed
	v.mu.Unlock()
	if err := v.fresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := v.cached(); n != 0 {
		t.Fatalf("%d entries survived a revision change", n)
	}
	v.close()
	if _, err := v.verify(ctx, key); err == nil {
		t.Fatal("a closed verifier accepted a key")
	}
}
