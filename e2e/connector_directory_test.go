package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// directoryCrash is the directory source's crash test (see
// TestConnectorCrashLosesNothing): 500 files written into the watched
// directory while it ingests them, files still coming while the server is
// down; the restarted source rescans and compares with its checkpoint.
func directoryCrash(t *testing.T) crashCase {
	testenv.Real(t)
	dir := t.TempDir()
	const total = 500
	return crashCase{
		prefix: testenv.PrefixT(t),
		sources: fmt.Sprintf(`
  - name: inbox
    kind: directory
    fields:
      path: %q
      recursive: true
      include: ["*.json"]
      debounce: 50ms
`, dir),
		filter: "{attributes: {type: com.switchyard.file.created}}",
		total:  total,
		feed: func() <-chan error {
			written := make(chan error, 1)
			go func() {
				for i := range total {
					p := filepath.Join(dir, fmt.Sprintf("batch-%d", i/100), fmt.Sprintf("file-%03d.json", i))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						written <- err
						return
					}
					if err := os.WriteFile(p, fmt.Appendf(nil, `{"n":%d}`, i), 0o644); err != nil {
						written <- err
						return
					}
					if i%10 == 9 {
						time.Sleep(10 * time.Millisecond)
					}
				}
				written <- nil
			}()
			return written
		},
	}
}
