package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// API key format: "syk_<id>_<secret>".
//
//   - "syk_" makes a leaked key recognisable to people and secret scanners,
//     and tells the authenticator which method to use without guessing.
//   - <id> is 80 random bits (16 characters): the key's record is looked up
//     by it in O(1). It is not secret: lists and audit records may show it.
//   - <secret> is 256 random bits from crypto/rand (52 characters).
//
// Both parts use lower-case base32 (a-z, 2-7), which has no '_', so the
// token splits unambiguously, survives URLs, shells and headers unquoted,
// and is read aloud without confusing 0/O or 1/l.
const (
	// APIKeyPrefix begins every API key.
	APIKeyPrefix      = "syk_"
	apiKeyIDBytes     = 10
	apiKeySecretBytes = 32
	apiKeyIDLen       = 16 // base32 of 10 bytes, no padding
	apiKeySecretLen   = 52 // base32 of 32 bytes, no padding
	// APIKeyLength is the length of every API key.
	APIKeyLength = len(APIKeyPrefix) + apiKeyIDLen + 1 + apiKeySecretLen
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newAPIKey returns a fresh key and its id.
func newAPIKey() (key, id string) {
	var idb [apiKeyIDBytes]byte
	var sec [apiKeySecretBytes]byte
	// crypto/rand.Read never fails (it crashes the program instead).
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(sec[:])
	id = keyEncoding.EncodeToString(idb[:])
	return APIKeyPrefix + id + "_" + keyEncoding.EncodeToString(sec[:]), id
}

// ParseAPIKey splits an API key into its id and secret. ok is false unless
// key has exactly the format above; nothing about key is echoed anywhere.
func ParseAPIKey(key string) (id, secret string, ok bool) {
	if len(key) != APIKeyLength || !strings.HasPrefix(key, APIKeyPrefix) {
		return "", "", false
	}
	rest := key[len(APIKeyPrefix):]
	if rest[apiKeyIDLen] != '_' {
		return "", "", false
	}
	id, secret = rest[:apiKeyIDLen], rest[apiKeyIDLen+1:]
	if !isKeyAlphabet(id) || !isKeyAlphabet(secret) {
		return "", "", false
	}
	return id, secret, true
}

// LooksLikeAPIKey reports whether a bearer token is meant as an API key (it
// may still be malformed).
func LooksLikeAPIKey(token string) bool { return strings.HasPrefix(token, APIKeyPrefix) }

func isKeyAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// hashAPIKey is what the store keeps: SHA-256 of the whole key, so the hash
// also binds the id. A fast hash is right here, not bcrypt or argon2: those
// slow down guessing of low-entropy passwords, but 256 random bits cannot be
// guessed at any speed, while a slow hash would cost every cache miss tens
// of milliseconds of CPU, a denial of service anyone could trigger with
// made-up keys.
func hashAPIKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }
