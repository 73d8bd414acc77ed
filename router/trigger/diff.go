package trigger

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// FieldChange is one field whose value differs between two versions of a
// trigger.
type FieldChange struct {
	// Path names the field as a trigger file does: "delivery.max_attempts",
	// "filter.attributes.type", "filter.all[1].cel".
	Path string `json:"path"`
	// Before and After are the field's values as JSON text (strings
	// quoted, durations as "10s"); empty when that version does not set
	// the field.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Diff lists the fields whose values differ between before and after, in
// their trigger-file form: the leaves of the two specs' JSON (maps by key,
// lists by index, an empty map or list as one value), in path order with
// list indexes compared as numbers. Two specs that encode alike have no
// difference.
func Diff(before, after Spec) []FieldChange {
	b, a := flatten(before), flatten(after)
	paths := make([]string, 0, len(a)+len(b))
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, comparePaths)
	var out []FieldChange
	for i, p := range paths {
		if b[p] == a[p] || filled(p, b, a, paths[i+1:]) || filled(p, a, b, paths[i+1:]) {
			continue
		}
		out = append(out, FieldChange{Path: p, Before: b[p], After: a[p]})
	}
	return out
}

// filled reports whether path p is an empty map or list in x that y fills:
// the fields y sets inside it are the change, not the container. rest are
// the paths after p, where those inside it sort.
func filled(p string, x, y map[string]string, rest []string) bool {
	if v := x[p]; v != "{}" && v != "[]" {
		return false
	}
	if _, ok := y[p]; ok {
		return false
	}
	for _, q := range rest {
		if within(q, p) {
			return true
		}
	}
	return false
}

// flatten returns the leaves of s's JSON form by path.
func flatten(s Spec) map[string]string {
	out := map[string]string{}
	raw, err := json.Marshal(s)
	if err != nil {
		// A Spec is plain data that always encodes; say so rather than
		// report no difference.
		out[""] = "unencodable: " + err.Error()
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		out[""] = "undecodable: " + err.Error()
		return out
	}
	walkJSON(v, "", out)
	return out
}

func walkJSON(v any, path string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 && path != "" {
			out[path] = "{}"
			return
		}
		for k, sub := range v {
			walkJSON(sub, join(path, k), out)
		}
	case []any:
		if len(v) == 0 {
			out[path] = "[]"
			return
		}
		for i, sub := range v {
			walkJSON(sub, path+"["+strconv.Itoa(i)+"]", out)
		}
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "a > b", not "a \u003e b"
		if err := enc.Encode(v); err != nil {
			out[path] = strconv.Quote(err.Error())
			return
		}
		out[path] = strings.TrimSuffix(b.String(), "\n")
	}
}

// comparePaths orders field paths as text, except that runs of digits (list
// indexes) compare as numbers: all[2] before all[10].
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if na != nb {
				return na - nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return strings.Compare(a, b)
}

// digits returns the length of the run of ASCII digits s starts with, at
// most 9 (so the run always fits an int).
func digits(s string) int {
	n := 0
	for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
