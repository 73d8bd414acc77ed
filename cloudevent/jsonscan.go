package cloudevent

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a strict, allocation-free RFC 8259 JSON scanner over a byte
// slice. It validates as it goes (grammar, escapes, UTF-8) and lets the
// event decoder capture the exact bytes of a value.
type scanner struct {
	b []byte
	i int
}

// strPlain marks bytes that may appear unescaped in a JSON string and need
// no further inspection: printable ASCII except '"' and '\\'.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	t['"'] = false
	t['\\'] = false
	return t
}()

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ws skips insignificant whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) && isJSONSpace(s.b[s.i]) {
		s.i++
	}
}

// syntaxError reports invalid JSON at the current offset.
func (s *scanner) syntaxError(what string) *Error {
	if s.i >= len(s.b) {
		return newError(ErrMalformed, "", "invalid JSON: unexpected end of input")
	}
	return newError(ErrMalformed, "", "invalid JSON at byte "+strconv.Itoa(s.i)+": "+what)
}

// unexpected reports the byte at the current offset as unexpected.
func (s *scanner) unexpected(context string) *Error {
	if s.i >= len(s.b) {
		return s.syntaxError("")
	}
	c := s.b[s.i]
	var shown string
	if c >= 0x20 && c < 0x7f {
		shown = strconv.QuoteRune(rune(c))
	} else {
		shown = "byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return s.syntaxError("unexpected " + shown + " " + context)
}

// kindAt names the JSON type of the value starting at the current offset.
func (s *scanner) kindAt() string {
	if s.i >= len(s.b) {
		return "nothing"
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || ('0' <= c && c <= '9'):
		return "number"
	}
	return "invalid JSON"
}

// scanString scans the string starting at the current offset (which must
// be '"') and returns its raw content (without the quotes) and whether it
// contains escape sequences.
func (s *scanner) scanString() (raw []byte, escaped bool, err *Error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.unexpected("where a string was expected")
	}
	s.i++
	start := s.i
	b := s.b
	for {
		for s.i < len(b) && strPlain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			return nil, false, s.syntaxError("")
		}
		switch c := b[s.i]; {
		case c == '"':
			raw = b[start:s.i]
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(b) {
				s.i = len(b)
				return nil, false, s.syntaxError("")
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(b) {
					s.i = len(b)
					return nil, false, s.syntaxError("")
				}
				for k := s.i + 2; k < s.i+6; k++ {
					if !isHex(b[k]) {
						s.i = k
						return nil, false, s.unexpected("in \\u escape")
					}
				}
				s.i += 6
			default:
				s.i++
				return nil, false, s.unexpected("after backslash in string")
			}
		case c < 0x20:
			return nil, false, s.unexpected("(control character) in string")
		default: // non-ASCII
			r, size := utf8.DecodeRune(b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, s.syntaxError("invalid UTF-8 in string")
			}
			s.i += size
		}
	}
}

// unescapeString decodes the raw content of a JSON string that contains
// escapes, appending to dst. ok is false when the string holds an unpaired
// UTF-16 surrogate, which has no UTF-8 encoding and is not a valid
// CloudEvents String. raw must have been accepted by scanString.
func unescapeString(dst, raw []byte) (out []byte, ok bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			// Copy the run up to the next escape at once.
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return dst, false
				}
				r2 := hex4(raw[i+2 : i+6])
				dec := utf16.DecodeRune(r, r2)
				if dec == utf8.RuneError {
					return dst, false
				}
				r = dec
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		i += 2
	}
	return dst, true
}

// hex4 decodes four hexadecimal digits (already validated).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// scanNumber scans an RFC 8259 number at the current offset and reports
// whether it is an integer (no fraction, no exponent).
func (s *scanner) scanNumber() (integer bool, err *Error) {
	b := s.b
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i >= len(b):
		return false, s.syntaxError("")
	case b[s.i] == '0':
		s.i++
	case '1' <= b[s.i] && b[s.i] <= '9':
		s.i++
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	default:
		return false, s.unexpected("in number")
	}
	integer = true
	if s.i < len(b) && b[s.i] == '.' {
		integer = false
		s.i++
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			return false, s.unexpected("in number fraction")
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		integer = false
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(b) || b[s.i] < '0' || b[s.i] > '9' {
			return false, s.unexpected("in number exponent")
		}
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
		}
	}
	return integer, nil
}

// scanLiteral scans true, false or null.
func (s *scanner) scanLiteral() *Error {
	var lit string
	switch s.b[s.i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		for k := 0; k < len(lit) && s.i < len(s.b) && s.b[s.i] == lit[k]; k++ {
			s.i++
		}
		return s.unexpected("in literal " + lit)
	}
	s.i += len(lit)
	return nil
}

// skipValue scans one complete JSON value (leading whitespace allowed) and
// leaves the offset just after it. It is iterative, so deeply nested input
// cannot exhaust the goroutine stack; the nesting stack costs one byte per
// level and lives on the goroutine stack up to 64 levels.
func (s *scanner) skipValue() *Error {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	b := s.b
	for {
		// Expect a value.
		s.ws()
		if s.i >= len(b) {
			return s.syntaxError("")
		}
		switch c := b[s.i]; {
		case c == '{':
			s.i++
			s.ws()
			if s.i < len(b) && b[s.i] == '}' {
				s.i++
				break
			}
			stack = append(stack, '{')
			if err := s.memberName(); err != nil {
				return err
			}
			continue
		case c == '[':
			s.i++
			s.ws()
			if s.i < len(b) && b[s.i] == ']' {
				s.i++
				break
			}
			stack = append(stack, '[')
			continue
		case c == '"':
			if _, _, err := s.scanString(); err != nil {
				return err
			}
		case c == 't' || c == 'f' || c == 'n':
			if err := s.scanLiteral(); err != nil {
				return err
			}
		case c == '-' || ('0' <= c && c <= '9'):
			if _, err := s.scanNumber(); err != nil {
				return err
			}
		default:
			return s.unexpected("where a value was expected")
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return nil
			}
			s.ws()
			if s.i >= len(b) {
				return s.syntaxError("")
			}
			top := stack[len(stack)-1]
			c := b[s.i]
			if c == ',' {
				s.i++
				if top == '{' {
					s.ws()
					if err := s.memberName(); err != nil {
						return err
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				s.i++
				stack = stack[:len(stack)-1]
				continue
			}
			if top == '{' {
				return s.unexpected("after object member value")
			}
			return s.unexpected("after array element")
		}
	}
}

// memberName scans `"name" ws ':'` inside an object.
func (s *scanner) memberName() *Error {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return s.unexpected("where an object member name was expected")
	}
	if _, _, err := s.scanString(); err != nil {
		return err
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.unexpected("after object member name")
	}
	s.i++
	return nil
}

// isJSONValue reports whether b is exactly one JSON value with no
// surrounding whitespace.
func isJSONValue(b []byte) bool {
	if len(b) == 0 || isJSONSpace(b[0]) || isJSONSpace(b[len(b)-1]) {
		return false
	}
	s := scanner{b: b}
	return s.skipValue() == nil && s.i == len(b)
}

// trimJSONSpace removes insignificant JSON whitespace around b.
func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 bytes are
// replaced by U+FFFD (callers keep invalid UTF-8 away from here; this only
// guarantees that the output is valid JSON).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if strPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
