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

// TestEveryConnectorDeclaresWhatItConfirms: the server refuses sources on
// the embedded store from Spec.Confirms and names the loss from Spec.Loses,
// so no built-in may leave them to the conservative default.
func TestEveryConnectorDeclaresWhatItConfirms(t *testing.T) {
	for _, s := range connectors.Default.List() {
		switch {
		case s.Confirms == "":
			t.Errorf("%s: Confirms is not declared", s.Kind)
		case s.Volatile() && s.Loses == "":
			t.Errorf("%s: confirms to the %s but does not say what a restart loses", s.Kind, s.Confirms)
		}
	}
}
