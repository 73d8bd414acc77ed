package webhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"

	"github.com/switchyard-io/switchyard/connectors"
)

// A request is stored once however many copies arrive (a sender retrying
// after a lost answer, an attacker replaying a captured request), at however
// many instances. Each request has a mark in connectors.Marks, keyed by
// markKey:
//
//   - absent: the request is new. The instance that sets the mark to
//     pending (markPending + a nonce) hands the event over; a copy arriving
//     meanwhile is answered 503, so its sender comes back later.
//   - pending: if the event is stored, the mark becomes markDone for the
//     dedup window; if not, the mark is dropped, so the sender's retry is
//     stored. A pending mark expires by itself after pendingTTL, so a crash
//     mid-request delays the sender's retries, never refuses them for good.
//   - done: a copy is answered 200 with the id, and stored no more.
//
// A copy is answered 200 only when an event with its id and body is durable,
// so no acknowledged request is lost; a copy can be stored twice only when
// storing the first took longer than pendingTTL (at-least-once, as before).
const (
	markPending = "p:"
	markDone    = "d"
)

// markKey names a request: the delivery id and the body. Both go in so that
// a request reusing an id with another body (an unsigned id header) is not
// taken for a copy and lost; the hash keeps keys short whatever the id holds.
func markKey(id string, body []byte) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(id)))
	h.Write(n[:])
	h.Write([]byte(id))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// pendingValue is a fresh pending mark; the nonce tells this request's own
// mark from another's.
func pendingValue() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return markPending + hex.EncodeToString(b[:])
}

// localMarks keeps marks in this process: the fallback when the source is
// given no shared marks (configuration checks, tests), where there is no
// other instance to share them with.
type localMarks struct {
	mu     sync.Mutex
	m      map[string]localMark
	writes int
}

type localMark struct {
	value   string
	expires time.Time
}

var _ connectors.Marks = (*localMarks)(nil)

// sweepEvery is how many writes pass between two sweeps of expired marks,
// which bounds the map to the marks of a window plus this many.
const sweepEvery = 1024

func (l *localMarks) write(key, value string, ttl time.Duration, now time.Time) {
	if l.m == nil {
		l.m = map[string]localMark{}
	}
	if l.writes++; l.writes%sweepEvery == 0 {
		for k, v := range l.m {
			if !now.Before(v.expires) {
				delete(l.m, k)
			}
		}
	}
	l.m[key] = localMark{value: value, expires: now.Add(ttl)}
}

// Mark implements connectors.Marks.
func (l *localMarks) Mark(_ context.Context, key, value string, ttl time.Duration) (string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if v, ok := l.m[key]; ok && now.Before(v.expires) {
		return v.value, false, nil
	}
	l.write(key, value, ttl, now)
	return value, true, nil
}

// Put implements connectors.Marks.
func (l *localMarks) Put(_ context.Context, key, value string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.write(key, value, ttl, time.Now())
	return nil
}

// Drop implements connectors.Marks.
func (l *localMarks) Drop(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
	return nil
}
