package s3poll

import (
	"strings"
	"unicode/utf8"
)

// safeSubject returns s with every byte CloudEvents strings forbid (control
// characters, invalid UTF-8, Unicode noncharacters) percent-encoded; other
// keys are returned unchanged.
func safeSubject(s string) string {
	if s == "" {
		return "%00" // unreachable for S3 keys; subjects must not be empty
	}
	ok := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if forbidden(r, n) {
			ok = false
			break
		}
		i += n
	}
	if ok {
		return s
	}
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if forbidden(r, n) {
			for j := i; j < i+n; j++ {
				b.WriteByte('%')
				b.WriteByte(hexd[s[j]>>4])
				b.WriteByte(hexd[s[j]&15])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func forbidden(r rune, size int) bool {
	return (r == utf8.RuneError && size == 1) || r < 0x20 || (r >= 0x7f && r <= 0x9f) ||
		(r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
