package all_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-io/switchyard/connectors"
	_ "github.com/switchyard-io/switchyard/connectors/all"
)

var update = flag.Bool("update", false, "rewrite docs/connectors from the connector specs")

// TestDocs fails when a connector's reference page differs from what its
// spec generates. Regenerate with: go test ./connectors/all -run TestDocs -update
func TestDocs(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "connectors")
	specs := connectors.Default.List()
	if len(specs) == 0 {
		t.Fatal("no connector registered")
	}
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range specs {
		path := filepath.Join(dir, s.Kind+".md")
		want := s.Markdown()
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is stale or missing: run go test ./connectors/all -run TestDocs -update", path)
		}
	}
}
