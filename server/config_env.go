package server

import "strings"

// expandEnv replaces the environment references of one configuration value:
//
//   - ${NAME} becomes the variable's value (which may be empty); an unset
//     NAME is reported in missing and its reference is left as it is;
//   - ${NAME:-default} becomes the value, or default when NAME is unset or
//     empty (default is literal text up to the first '}');
//   - $${ becomes ${, for a literal ${ in a value.
//
// NAME is a letter or '_' followed by letters, digits and '_'. Every other
// '$' is kept: DSNs and passwords hold dollars that are not references, and
// os.ExpandEnv, which took $word and ${anything} for one, mangled them.
// Values are substituted once: a value holding ${X} is not expanded again.
func expandEnv(s string, lookup func(string) (string, bool)) (out string, missing []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		name, def, hasDef, n := parseRef(s[i:])
		if n == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			b.WriteString(def)
		case ok || hasDef:
			b.WriteString(v)
		default:
			missing = append(missing, name)
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), missing
}

// parseRef reads a reference at the start of s ("${NAME}" or
// "${NAME:-default}") and returns its length, 0 when s does not start with
// one.
func parseRef(s string) (name, def string, hasDef bool, n int) {
	if !strings.HasPrefix(s, "${") {
		return "", "", false, 0
	}
	j := 2
	for j < len(s) && (s[j] == '_' || isLetter(s[j]) || (j > 2 && isDigit(s[j]))) {
		j++
	}
	if j == 2 || j == len(s) {
		return "", "", false, 0
	}
	name = s[2:j]
	switch {
	case s[j] == '}':
		return name, "", false, j + 1
	case strings.HasPrefix(s[j:], ":-"):
		end := strings.IndexByte(s[j+2:], '}')
		if end < 0 {
			return "", "", false, 0
		}
		return name, s[j+2 : j+2+end], true, j + 2 + end + 1
	}
	return "", "", false, 0
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
