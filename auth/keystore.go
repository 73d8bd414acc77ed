package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxAPIKeys bounds how many API keys one store holds, so a careless script
// or a compromised admin key cannot grow Redis without end.
const MaxAPIKeys = 10000

// MaxKeyTTL is the longest expiry a key may be given.
const MaxKeyTTL = 10 * 365 * 24 * time.Hour

// keyNameRE: names are what a CLI user types; the same characters as
// trigger names plus '.' and '_'.
var keyNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// KeySpec asks for a new API key.
type KeySpec struct {
	// Name is unique among the store's keys: 1 to 63 lower-case letters,
	// digits, '.', '_' and '-', starting and ending with a letter or digit.
	Name string
	// Roles granted to the key (at least one).
	Roles []Role
	// Scope restricts the key.
	Scope Scope
	// TTL is how long the key is valid; zero for ever. At most MaxKeyTTL.
	TTL time.Duration
}

// Validate checks the spec and reports every problem as a FieldError in a
// FieldErrors, with paths "name", "roles[i]", "scope.…", "ttl".
func (s KeySpec) Validate() error {
	var errs FieldErrors
	if len(s.Name) > 63 || !keyNameRE.MatchString(s.Name) {
		errs.add("name", "%q is not a valid key name: use 1 to 63 lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit", s.Name)
	}
	validateRoles(&errs, "roles", s.Roles)
	s.Scope.validate(&errs, "scope")
	if s.TTL < 0 || s.TTL > MaxKeyTTL {
		errs.add("ttl", "must be between 0 (no expiry) and %s, got %s", MaxKeyTTL, s.TTL)
	}
	return errs.err()
}

// KeyInfo describes a stored API key. It never holds the secret or its hash.
type KeyInfo struct {
	Name string
	// ID is the key's public id (the part after "syk_").
	ID      string
	Roles   []Role
	Scope   Scope
	Created time.Time
	// Expires is zero when the key does not expire.
	Expires time.Time
	// CreatedBy is the subject of the identity that created the key.
	CreatedBy string
}

// Expired reports whether the key had expired at now.
func (k KeyInfo) Expired(now time.Time) bool { return !k.Expires.IsZero() && !now.Before(k.Expires) }

// keyRecord is a key as stored: a JSON value in the keys hash, by id.
type keyRecord struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	Hash      string `json:"hash"` // hex SHA-256 of the whole key
	Roles     []Role `json:"roles"`
	Scope     Scope  `json:"scope"`
	Created   int64  `json:"created"`           // unix ms
	Expires   int64  `json:"expires,omitempty"` // unix ms, 0 = never
	CreatedBy string `json:"created_by,omitempty"`
}

func (r keyRecord) info() KeyInfo {
	k := KeyInfo{Name: r.Name, ID: r.ID, Roles: r.Roles, Scope: r.Scope, Created: time.UnixMilli(r.Created), CreatedBy: r.CreatedBy}
	if r.Expires > 0 {
		k.Expires = time.UnixMilli(r.Expires)
	}
	return k
}

// keyLayout names the Redis keys of the auth package. The hash tag {auth}
// puts them in one cluster slot, so a key's creation or revocation (record,
// name index, revision) is one atomic script.
type keyLayout struct{ keys, names, rev, audit string }

func newKeyLayout(prefix string) keyLayout {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	b := prefix + ":{auth}:"
	return keyLayout{keys: b + "keys", names: b + "names", rev: b + "rev", audit: b + "audit"}
}

// KeyStore keeps API keys in Redis:
//
//	<prefix>:{auth}:keys   HASH   id → key record (JSON: name, SHA-256 of the key, roles, scope, times, creator)
//	<prefix>:{auth}:names  HASH   name → id (names are unique)
//	<prefix>:{auth}:rev    STRING revision, incremented by every create and revoke
//
// Every replica polls the revision (see Authenticator) and drops its cache
// of key lookups when it moves. KeyStore is safe for concurrent use; it does
// not own the client.
type KeyStore struct {
	rdb redis.UniversalClient
	k   keyLayout
}

// NewKeyStore returns a store using rdb with keys under prefix
// (DefaultKeyPrefix if empty).
func NewKeyStore(rdb redis.UniversalClient, prefix string) *KeyStore {
	return &KeyStore{rdb: rdb, k: newKeyLayout(prefix)}
}

// createScript adds a key when its name is free (and the store not full).
// KEYS: names, keys, rev. ARGV: name, id, record, max keys.
// Returns 1 created, 0 name taken, -1 id taken, -2 store full.
var createScript = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if cur == ARGV[2] then return 1 end
  return 0
end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return -2 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1
`

// revokeScript removes the key named ARGV[1] if it still has id ARGV[2].
// KEYS: names, keys, rev. Returns 1 removed, 0 not found.
var revokeScript = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
`

// eval runs one script in MULTI/EXEC: go-redis resends a plain command after
// a lost reply but never a transaction, and a create or revoke run twice
// would answer "exists" or "not found" for what it just did. The script's
// text goes along each time (EVAL, not EVALSHA): these calls are rare, and
// a server that lost its script cache then needs no second round.
func (s *KeyStore) eval(ctx context.Context, script string, keys []string, args ...any) (int64, error) {
	var cmd *redis.Cmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		cmd = p.Eval(ctx, script, keys, args...)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return cmd.Int64()
}

// Create stores a new key for spec on behalf of by, who must be allowed to
// grant its roles and scope (Identity.AllowGrant). It returns the key, the
// only time it is ever seen: the store keeps its SHA-256 alone. Errors: a
// FieldErrors for a bad spec, a *DeniedError, ErrKeyExists, or a wrapped
// ErrUnavailable.
func (s *KeyStore) Create(ctx context.Context, by *Identity, spec KeySpec) (string, KeyInfo, error) {
	if err := spec.Validate(); err != nil {
		return "", KeyInfo{}, err
	}
	if err := by.AllowGrant(spec.Roles, spec.Scope); err != nil {
		return "", KeyInfo{}, err
	}
	now := time.Now()
	for range 3 { // an id collision (80 random bits) is practically impossible; retry anyway
		key, id := newAPIKey()
		h := hashAPIKey(key)
		rec := keyRecord{
			Name: spec.Name, ID: id, Hash: hex.EncodeToString(h[:]),
			Roles: slices.Clone(spec.Roles), Scope: spec.Scope,
			Created: now.UnixMilli(), CreatedBy: by.Subject,
		}
		if spec.TTL > 0 {
			rec.Expires = now.Add(spec.TTL).UnixMilli()
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return "", KeyInfo{}, err
		}
		n, err := s.eval(ctx, createScript, []string{s.k.names, s.k.keys, s.k.rev}, spec.Name, id, raw, MaxAPIKeys)
		if err != nil {
			return "", KeyInfo{}, fmt.Errorf("%w: create key: %v", ErrUnavailable, err)
		}
		switch n {
		case 1:
			return key, rec.info(), nil
		case 0:
			return "", KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyExists, spec.Name)
		case -2:
			return "", KeyInfo{}, fmt.Errorf("the store holds %d API keys already; revoke some first", MaxAPIKeys)
		}
	}
	return "", KeyInfo{}, errors.New("could not draw a unique key id")
}

// List returns the keys by covers (Identity.Covers: a tenant's admin sees
// only keys inside its scope), sorted by name, expired ones included. It
// needs PermTokensManage.
func (s *KeyStore) List(ctx context.Context, by *Identity) ([]KeyInfo, error) {
	if err := by.Allow(PermTokensManage); err != nil {
		return nil, err
	}
	all, err := s.rdb.HGetAll(ctx, s.k.keys).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: list keys: %v", ErrUnavailable, err)
	}
	out := make([]KeyInfo, 0, len(all))
	for _, raw := range all {
		var rec keyRecord
		if json.Unmarshal([]byte(raw), &rec) != nil {
			continue
		}
		if by.Covers(rec.Scope) {
			out = append(out, rec.info())
		}
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Revoke deletes the key of this name. A key outside by's scope is reported
// as not found, as if it did not exist. Every replica refuses the key within
// its RevocationDelay. It needs PermTokensManage; errors: *DeniedError,
// ErrKeyNotFound, wrapped ErrUnavailable.
func (s *KeyStore) Revoke(ctx context.Context, by *Identity, name string) (KeyInfo, error) {
	if err := by.Allow(PermTokensManage); err != nil {
		return KeyInfo{}, err
	}
	id, err := s.rdb.HGet(ctx, s.k.names, name).Result()
	if errors.Is(err, redis.Nil) {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: revoke key: %v", ErrUnavailable, err)
	}
	rec, found, err := s.lookup(ctx, id)
	if err != nil {
		return KeyInfo{}, err
	}
	if found && !by.Covers(rec.Scope) {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	n, err := s.eval(ctx, revokeScript, []string{s.k.names, s.k.keys, s.k.rev}, name, id)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: revoke key: %v", ErrUnavailable, err)
	}
	if n == 0 {
		return KeyInfo{}, fmt.Errorf("%w: %q", ErrKeyNotFound, name)
	}
	if !found {
		rec = keyRecord{Name: name, ID: id}
	}
	return rec.info(), nil
}

// lookup reads the record of key id.
func (s *KeyStore) lookup(ctx context.Context, id string) (keyRecord, bool, error) {
	raw, err := s.rdb.HGet(ctx, s.k.keys, id).Result()
	if errors.Is(err, redis.Nil) {
		return keyRecord{}, false, nil
	}
	if err != nil {
		return keyRecord{}, false, fmt.Errorf("%w: read key: %v", ErrUnavailable, err)
	}
	var rec keyRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.ID != id {
		// A record this code did not write: treat the key as unknown
		// rather than guess.
		return keyRecord{}, false, nil
	}
	return rec, true, nil
}

// revision reads the keys' revision (0 before the first change).
func (s *KeyStore) revision(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.k.rev).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// hashOf decodes a record's hash; a malformed one yields a hash nothing
// matches.
func (r keyRecord) hashOf() ([sha256.Size]byte, bool) {
	var h [sha256.Size]byte
	b, err := hex.DecodeString(r.Hash)
	if err != nil || len(b) != sha256.Size {
		return h, false
	}
	copy(h[:], b)
	return h, true
}
