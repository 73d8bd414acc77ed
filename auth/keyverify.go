package auth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"
)

// keyVerifier checks API keys against the KeyStore through a cache, so a
// busy publisher costs no Redis round trip per request, while a revoked key
// is refused on every replica within the revocation delay.
//
// How the delay holds. Every create and revoke increments the revision in
// the same script that changes the keys. The cache trusts its entries only
// while its last revision read *started* less than delay ago, and drops them
// all when a read finds the revision moved. So delay after a revocation,
// any entry still in use was confirmed by a read that began after the
// revocation was committed, and that read saw the new revision and emptied
// the cache. A lookup that raced with such a read is not stored (the entry
// would carry the old generation). Nothing here depends on pub/sub, whose
// notices are lost during a reconnect without anyone noticing.
//
// The revision is read on demand, not by a poller: an idle replica sends
// nothing, and a busy one refreshes ahead (in the background, once half the
// delay has passed), so requests wait for Redis only when the replica was
// idle for longer than the delay or Redis is slow.
type keyVerifier struct {
	store      *KeyStore
	delay      time.Duration
	maxEntries int
	// fetchTimeout bounds one Redis read, independently of the request that
	// started it (other requests may be waiting for the same read).
	fetchTimeout time.Duration
	now          func() time.Time

	base context.Context // cancelled by close; parent of background reads
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	gen      uint64 // incremented whenever the revision is seen to move
	rev      int64
	revKnown bool
	lastOK   time.Time  // start of the latest successful revision read
	revRead  *revFlight // the revision read under way, if any
	entries  map[string]*keyEntry
	reads    map[string]*keyFlight // record reads under way, by key id
}

// keyEntry is a cached lookup: the record of a key id, or its absence.
type keyEntry struct {
	rec   keyRecord
	found bool
	gen   uint64
	at    time.Time
}

type revFlight struct {
	done chan struct{}
	err  error
}

type keyFlight struct {
	done  chan struct{}
	entry *keyEntry
	err   error
}

// maxEntryAge re-reads an entry now and then even when nothing changed, so a
// record edited by hand in Redis (without the revision) is seen eventually.
const maxEntryAge = time.Minute

func newKeyVerifier(store *KeyStore, delay time.Duration, maxEntries int) *keyVerifier {
	base, stop := context.WithCancel(context.Background())
	return &keyVerifier{
		store: store, delay: delay, maxEntries: maxEntries,
		fetchTimeout: max(delay, 2*time.Second), now: time.Now,
		base: base, stop: stop,
		entries: map[string]*keyEntry{}, reads: map[string]*keyFlight{},
	}
}

// close stops the background reads and waits for them; later calls fail
// with ErrUnavailable.
func (v *keyVerifier) close() {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.stop()
	v.wg.Wait()
}

var errClosed = fmt.Errorf("%w: the authenticator is closed", ErrUnavailable)

// verify returns the identity of an API key.
func (v *keyVerifier) verify(ctx context.Context, key string) (*Identity, error) {
	id, _, ok := ParseAPIKey(key)
	if !ok {
		return nil, unauthenticated(MethodAPIKey, "malformed API key")
	}
	if err := v.fresh(ctx); err != nil {
		return nil, err
	}
	e, err := v.entry(ctx, id)
	if err != nil {
		return nil, err
	}
	want, hashOK := e.rec.hashOf()
	got := hashAPIKey(key)
	// Constant time: the comparison must not tell how many leading bytes of
	// a guess were right. An unknown id is compared too (against zeros), so
	// "unknown" and "wrong secret" cost the same and read the same.
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	if !e.found || !hashOK || !match {
		return nil, unauthenticated(MethodAPIKey, "invalid API key")
	}
	info := e.rec.info()
	if info.Expired(v.now()) {
		return nil, unauthenticated(MethodAPIKey, "API key %q expired at %s", info.Name, info.Expires.UTC().Format(time.RFC3339))
	}
	return (&Identity{Subject: info.Name, Method: MethodAPIKey, Roles: info.Roles, Scope: info.Scope, Expires: info.Expires}).clone(), nil
}

// fresh makes sure the cache may be trusted: its last revision read started
// less than delay ago. It waits for a read only when it must. A read that
// was already under way may have started too long ago to count (Redis was
// slow), so after it the check is made again, with a read of its own.
func (v *keyVerifier) fresh(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		v.mu.Lock()
		if v.closed {
			v.mu.Unlock()
			return errClosed
		}
		age := v.now().Sub(v.lastOK)
		trusted := v.revKnown && age < v.delay
		if trusted && age < v.delay/2 {
			v.mu.Unlock()
			return nil
		}
		f := v.revRead
		if f == nil {
			f = &revFlight{done: make(chan struct{})}
			v.revRead = f
			v.wg.Add(1)
			go v.readRevision(f)
		}
		v.mu.Unlock()
		if trusted {
			// Still trusted: the read refreshes ahead; this request does
			// not wait for it.
			return nil
		}
		if attempt == 2 {
			return fmt.Errorf("%w: the API key revision could not be read within the revocation delay", ErrUnavailable)
		}
		select {
		case <-f.done:
			if f.err != nil {
				return f.err
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
}

func (v *keyVerifier) readRevision(f *revFlight) {
	defer v.wg.Done()
	ctx, cancel := context.WithTimeout(v.base, v.fetchTimeout)
	defer cancel()
	start := v.now()
	rev, err := v.store.revision(ctx)
	v.mu.Lock()
	if err == nil {
		if !v.revKnown || rev != v.rev {
			v.gen++
			clear(v.entries)
			v.rev, v.revKnown = rev, true
		}
		if start.After(v.lastOK) {
			v.lastOK = start
		}
	} else {
		f.err = fmt.Errorf("%w: read key revision: %v", ErrUnavailable, err)
	}
	v.revRead = nil
	v.mu.Unlock()
	close(f.done)
}

// entry returns the cached lookup of key id, reading Redis on a miss (one
// read per id however many requests miss together).
func (v *keyVerifier) entry(ctx context.Context, id string) (*keyEntry, error) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil, errClosed
	}
	if e, ok := v.entries[id]; ok && e.gen == v.gen && v.now().Sub(e.at) < maxEntryAge {
		v.mu.Unlock()
		return e, nil
	}
	f := v.reads[id]
	if f == nil {
		f = &keyFlight{done: make(chan struct{})}
		v.reads[id] = f
		gen := v.gen
		v.wg.Add(1)
		go v.readKey(id, gen, f)
	}
	v.mu.Unlock()
	select {
	case <-f.done:
		return f.entry, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

func (v *keyVerifier) readKey(id string, gen uint64, f *keyFlight) {
	defer v.wg.Done()
	ctx, cancel := context.WithTimeout(v.base, v.fetchTimeout)
	defer cancel()
	rec, found, err := v.store.lookup(ctx, id)
	v.mu.Lock()
	delete(v.reads, id)
	if err != nil {
		f.err = err
	} else {
		f.entry = &keyEntry{rec: rec, found: found, gen: gen, at: v.now()}
		// A read that overlapped a revision change may hold the old record:
		// it answers the requests that waited for it (they arrived before
		// the change was seen) but is not kept.
		if gen == v.gen {
			v.put(id, f.entry)
		}
	}
	v.mu.Unlock()
	close(f.done)
}

// put stores an entry, making room first when the cache is full: stale
// entries go, and if that is not enough, arbitrary ones (map order).
func (v *keyVerifier) put(id string, e *keyEntry) {
	if len(v.entries) >= v.maxEntries {
		now := v.now()
		for k, old := range v.entries {
			if old.gen != v.gen || now.Sub(old.at) >= maxEntryAge {
				delete(v.entries, k)
			}
		}
		for k := range v.entries {
			if len(v.entries) < v.maxEntries {
				break
			}
			delete(v.entries, k)
		}
	}
	v.entries[id] = e
}

// cached reports how many lookups the cache holds (tests).
func (v *keyVerifier) cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.entries)
}
