package server

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExpandEnv(t *testing.T) {
	env := envOf(map[string]string{"SECRET": "s3cr$t", "EMPTY": "", "REF": "${SECRET}", "N": "0042"})
	for name, tc := range map[string]struct {
		in, want string
		missing  []string
	}{
		"set":                         {in: "${SECRET}", want: "s3cr$t"},
		"inside text":                 {in: "a-${SECRET}-b", want: "a-s3cr$t-b"},
		"set but empty":               {in: "x${EMPTY}y", want: "xy"},
		"unset":                       {in: "k=${NOPE}", want: "k=${NOPE}", missing: []string{"NOPE"}},
		"two unset":                   {in: "${A}${B}", want: "${A}${B}", missing: []string{"A", "B"}},
		"default when unset":          {in: "${NOPE:-info}", want: "info"},
		"default when empty":          {in: "${EMPTY:-info}", want: "info"},
		"default ignored when set":    {in: "${SECRET:-x}", want: "s3cr$t"},
		"empty default":               {in: "${NOPE:-}", want: ""},
		"default with dollar":         {in: "${NOPE:-a$b}", want: "a$b"},
		"value not expanded again":    {in: "${REF}", want: "${SECRET}"},
		"digits stay text":            {in: "${N}", want: "0042"},
		"escape":                      {in: "$${SECRET}", want: "${SECRET}"},
		"dollar word kept":            {in: "postgres://u:pa$word@h/db", want: "postgres://u:pa$word@h/db"},
		"dollar digit kept":           {in: "$1 $$ $", want: "$1 $$ $"},
		"not a name":                  {in: "${not a name} ${1X} ${}", want: "${not a name} ${1X} ${}"},
		"unterminated":                {in: "x${SECRET", want: "x${SECRET"},
		"unterminated default":        {in: "${NOPE:-abc", want: "${NOPE:-abc"},
		"other operators kept":        {in: "${NOPE:?msg} ${NOPE-x}", want: "${NOPE:?msg} ${NOPE-x}"},
		"reference after lone dollar": {in: "$${ and $${SECRET} and $ ${SECRET}", want: "${ and ${SECRET} and $ s3cr$t"},
	} {
		t.Run(name, func(t *testing.T) {
			got, missing := expandEnv(tc.in, env)
			if got != tc.want || strings.Join(missing, ",") != strings.Join(tc.missing, ",") {
				t.Fatalf("expandEnv(%q) = %q, missing %v; want %q, missing %v", tc.in, got, missing, tc.want, tc.missing)
			}
		})
	}
}

// refOracle is the grammar written as a regular expression, to compare the
// hand-written scanner with.
var refOracle = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

func oracleExpand(s string, lookup func(string) (string, bool)) (string, []string) {
	var missing []string
	var b strings.Builder
	last := 0
	for _, m := range refOracle.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		whole := s[m[0]:m[1]]
		if whole == "$${" {
			b.WriteString("${")
			continue
		}
		name := s[m[2]:m[3]]
		v, ok := lookup(name)
		switch {
		case m[4] >= 0 && v == "":
			b.WriteString(s[m[4]+2 : m[5]])
		case ok || m[4] >= 0:
			b.WriteString(v)
		default:
			missing = append(missing, name)
			b.WriteString(whole)
		}
	}
	b.WriteString(s[last:])
	return b.String(), missing
}

// FuzzExpandEnv checks the expander against the regular-expression oracle
// and its invariants: text without "${" is returned as it is, values are
// never expanded again, and every missing name was referenced.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${A}", "${A:-x}", "$${A}", "${A", "${A:-", "${1}", "$", "$$", "a$b${B}c", "${Bb_1:-$x}}",
		"postgres://u:pa$word@h:5432/db?x=${DB}", "${EMPTY:-d}", "${ A}", "${A}${B}${C:-c}$${D}", "\xff${A}",
	} {
		f.Add(s)
	}
	// Names of even length are set (to a value holding references), empty
	// when they start with E, unset otherwise.
	lookup := func(name string) (string, bool) {
		switch {
		case len(name)%2 == 1:
			return "", false
		case name[0] == 'E':
			return "", true
		}
		return "<${" + name + "}$>", true
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, missing := expandEnv(s, lookup)
		want, wantMissing := oracleExpand(s, lookup)
		if got != want || strings.Join(missing, "\x00") != strings.Join(wantMissing, "\x00") {
			t.Fatalf("expandEnv(%q) = %q %q; the grammar says %q %q", s, got, missing, want, wantMissing)
		}
		if !strings.Contains(s, "${") && got != s {
			t.Fatalf("expandEnv(%q) changed text without a reference: %q", s, got)
		}
		for _, name := range missing {
			if !strings.Contains(s, "${"+name) {
				t.Fatalf("missing %q is not referenced in %q", name, s)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("expandEnv(%q) made invalid UTF-8: %q", s, got)
		}
	})
}
