package directory

import (
	"maps"
	pathpkg "path"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"*.csv", "a.csv", true},
		{"*.csv", "dir/sub/a.csv", true}, // no '/': the base name
		{"*.csv", "a.csv.tmp", false},
		{".*", "dir/.hidden", true},
		{"dir/*.csv", "dir/a.csv", true},
		{"dir/*.csv", "dir/sub/a.csv", false},
		{"dir/**/*.csv", "dir/a.csv", true},
		{"dir/**/*.csv", "dir/x/y/a.csv", true},
		{"**/*.csv", "a.csv", true},
		{"**", "anything/at/all", true},
		{"dir/**", "dir/x", true},
		{"dir/**", "other/x", false},
		{"a/**/**/b", "a/b", true},
		{"a/?/b", "a/x/b", true},
		{"a/[0-9]/b", "a/x/b", false},
		{"/dir/*.csv", "dir/a.csv", true}, // a leading '/' anchors at the root, as it always is
	}
	for _, tc := range cases {
		ps, err := compilePatterns("include", []string{tc.pattern})
		if err != nil {
			t.Fatal(err)
		}
		if got := ps[0].match(tc.path); got != tc.want {
			t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	files := map[string]fileState{
		"a.txt":            {Size: 1, Mod: 2},
		"dir/ünïcode":      {Size: 3, Mod: 4},
		"bad\xff\xfename":  {Size: 5, Mod: 6}, // not UTF-8: kept exactly
		"quote\"and\\back": {Size: 7, Mod: 8},
	}
	b, err := encodeSnapshot("/data", files)
	if err != nil {
		t.Fatal(err)
	}
	root, got, err := decodeSnapshot(b)
	if err != nil || root != "/data" || !maps.Equal(got, files) {
		t.Fatalf("round trip: %q %v %v", root, got, err)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := encodeSnapshot("/r", map[string]fileState{"a": {1, 2}, "\xff": {3, 4}})
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		root, files, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again, err := encodeSnapshot(root, files)
		if err != nil {
			t.Fatal(err)
		}
		r2, f2, err := decodeSnapshot(again)
		if err != nil || r2 != root || !maps.Equal(f2, files) {
			t.Fatalf("re-encoded snapshot differs: %v", err)
		}
	})
}

func FuzzGlob(f *testing.F) {
	f.Add("dir/**/*.csv", "dir/x/a.csv")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, pat, path string) {
		if len(pat) > 64 || len(path) > 256 {
			return
		}
		ps, err := compilePatterns("include", []string{pat})
		if err != nil {
			return
		}
		got := ps[0].match(path)
		if !ps[0].baseOnly && strings.Count(pat, "**") <= 3 {
			if want := refMatch(ps[0].segs, strings.Split(path, "/")); got != want {
				t.Fatalf("%q on %q: %v, the reference says %v", pat, path, got, want)
			}
		}
	})
}

// refMatch is the obvious recursive matcher, for comparison.
func refMatch(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if refMatch(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, _ := pathpkg.Match(pat[0], segs[0])
	return ok && refMatch(pat[1:], segs[1:])
}
