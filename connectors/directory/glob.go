package directory

import (
	"fmt"
	"path"
	"strings"
)

// pattern is one include or exclude glob.
type pattern struct {
	text     string
	baseOnly bool     // no '/': matches the base name
	segs     []string // split on '/', "**" matching any number of segments
}

func compilePatterns(field string, list []string) ([]pattern, error) {
	out := make([]pattern, 0, len(list))
	for i, p := range list {
		if p == "" {
			return nil, fmt.Errorf("fields.%s[%d]: empty pattern", field, i)
		}
		cp := pattern{text: p, baseOnly: !strings.Contains(p, "/")}
		cp.segs = strings.Split(strings.Trim(p, "/"), "/")
		for _, s := range cp.segs {
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("fields.%s[%d]: %q: %w", field, i, p, err)
			}
		}
		out = append(out, cp)
	}
	return out, nil
}

// match reports whether rel (slash-separated, relative) matches.
func (p pattern) match(rel string) bool {
	if p.baseOnly {
		ok, _ := path.Match(p.text, path.Base(rel))
		return ok
	}
	return matchSegs(p.segs, strings.Split(rel, "/"))
}

// matchSegs matches path segments against pattern segments, "**" standing
// for any number of segments, in O(len(pat)·len(segs)).
func matchSegs(pat, segs []string) bool {
	// ok[j]: pat[:i] matches segs[:j], row by row.
	ok := make([]bool, len(segs)+1)
	ok[0] = true
	for _, p := range pat {
		if p == "**" {
			for j := 1; j <= len(segs); j++ {
				ok[j] = ok[j] || ok[j-1]
			}
			continue
		}
		for j := len(segs); j >= 1; j-- {
			m, _ := path.Match(p, segs[j-1])
			ok[j] = ok[j-1] && m
		}
		ok[0] = false
	}
	return ok[len(segs)]
}

func anyMatch(ps []pattern, rel string) bool {
	for _, p := range ps {
		if p.match(rel) {
			return true
		}
	}
	return false
}
