package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-io/switchyard/internal/testenv"
)

// TestS3SourceCrashLosesNothing runs an s3 polling source in `switchyard
// serve` against an S3 store (gofakes3 in the test process, on loopback),
// puts 500 objects while it ingests them, SIGKILLs the server mid-stream
// (objects keep coming while it is down), restarts it and checks that every
// object's created event reached the function: the restarted source diffs
// the bucket with its durable checkpoint.
func TestS3SourceCrashLosesNothing(t *testing.T) {
	redisURL := testenv.RedisURL()
	testenv.Real(t)
	prefix := testenv.PrefixT(t)

	store := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(store.Close)
	host := strings.TrimPrefix(store.URL, "http://")
	s3c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4("key", "secret", ""), Region: "us-east-1"})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s3c.MakeBucket(ctx, "crash-bucket", minio.MakeBucketOptions{}))

	fnAddr := freeAddr(t)
	c := &counter{seen: map[string]int{}}
	serveFunction(t, fnAddr, c.handle)
	cfg := filepath.Join(t.TempDir(), "switchyard.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: uploads
    kind: s3
    fields:
      endpoint: http://%s
      bucket: crash-bucket
      prefix: in/
      region: us-east-1
      bucket_lookup: path
      access_key: key
      secret_key: secret
      poll_interval: 200ms
`, host)), 0o600))
	args := []string{"--config", cfg, "--redis-url", redisURL, "--key-prefix", prefix, "--lease-grace", "500ms"}
	a := startServe(t, args...)
	applyTrigger(t, a.GRPC, fmt.Sprintf(`
name: s3-crash
filter: {attributes: {type: com.switchyard.s3.object.created}}
target: {grpc: "%s"}
delivery: {max_concurrency: 8, timeout: 2s, initial_backoff: 50ms, max_backoff: 500ms}
`, fnAddr))

	const total = 500
	put := make(chan error, 1)
	go func() {
		for i := range total {
			body := fmt.Sprintf(`{"n":%d}`, i)
			if _, err := s3c.PutObject(ctx, "crash-bucket", fmt.Sprintf("in/obj-%03d.json", i), strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
				put <- err
				return
			}
			if i%10 == 9 {
				time.Sleep(15 * time.Millisecond)
			}
		}
		put <- nil
	}()
	testenv.Eventually(t, 30*time.Second, func() bool { return c.unique() >= 50 }, "first deliveries")
	a.Kill()
	atKill := c.unique()
	require.NoError(t, <-put)
	require.Less(t, atKill, total, "the crash must happen before ingestion completes")

	b := startServe(t, args...)
	testenv.Eventually(t, 90*time.Second, func() bool { return c.unique() == total },
		"all %d objects delivered after the restart (have %d)", total, c.unique())
	time.Sleep(time.Second) // a few more listings: nothing new
	require.Equal(t, total, c.unique())
	t.Logf("s3 crash test: %d objects, %d delivered before SIGKILL, %d delivered in all, %d duplicates",
		total, atKill, c.unique(), c.duplicates())
	b.stop(t)
}
