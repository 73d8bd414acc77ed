package all_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-io/switchyard/targets"
	_ "github.com/switchyard-io/switchyard/targets/all"
)

var update = flag.Bool("update", false, "rewrite docs/targets from the target specs")

// TestDocs fails when a target kind's reference page differs from what its
// spec generates. Regenerate with: go test ./targets/all -run TestDocs -update
func TestDocs(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "targets")
	// The built-in kinds (tests of this package register others).
	for _, kind := range []string{"amqp", "kafka", "nats_jetstream", "redis_streams", "sql"} {
		s, ok := targets.Default.Lookup(kind)
		if !ok {
			t.Fatalf("target kind %s is not registered by targets/all", kind)
		}
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
			t.Errorf("%s is stale or missing: run go test ./targets/all -run TestDocs -update", path)
		}
	}
}
