package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// READMEBlock returns the body of the fenced code block that follows the
// line "<!-- test: NAME -->" in the repository's README.md (a block
// indented in a list item loses its indentation), so that tests run exactly
// what the README shows. The test fails when there is none.
func READMEBlock(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("README.md: no go.mod above the test's directory")
		}
		dir = parent
	}
	raw, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- test: "+name+" -->\n")
	if !ok {
		t.Fatalf("README.md has no <!-- test: %s --> marker", name)
	}
	lines := strings.Split(strings.TrimLeft(after, "\n"), "\n")
	fence := strings.TrimLeft(lines[0], " ")
	indent := lines[0][:len(lines[0])-len(fence)]
	if !strings.HasPrefix(fence, "```") {
		t.Fatalf("README.md: the %s marker is not followed by a fenced block", name)
	}
	var body strings.Builder
	for _, l := range lines[1:] {
		if l == indent+"```" {
			return body.String()
		}
		body.WriteString(strings.TrimPrefix(l, indent) + "\n")
	}
	t.Fatalf("README.md: the %s block is not closed", name)
	return ""
}
