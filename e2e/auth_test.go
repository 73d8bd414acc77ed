package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/internal/testenv"
	"github.com/switchyard-io/switchyard/sdk"
)

const e2eAdminToken = "admin-0123456789abcdef0123456789abcdef"

// TestAuthAcrossReplicas runs two `switchyard serve` processes with
// authentication on over one Redis (one takes the admin token from
// SWITCHYARD_ADMIN_TOKEN, the other from --admin-token-file): a key made
// with the real `token create` command works on both, its scope holds,
// and once `token revoke` ran on the first the second refuses it within
// 2 s.
func TestAuthAcrossReplicas(t *testing.T) {
	testenv.Real(t)
	prefix := testenv.PrefixT(t)
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(tokFile, []byte(e2eAdminToken+"\n"), 0o600))
	args := []string{"--redis-url", testenv.RedisURL(), "--key-prefix", prefix}
	p1 := startServeEnv(t, []string{"SWITCHYARD_ADMIN_TOKEN=" + e2eAdminToken}, args...)
	p2 := startServe(t, append(args, "--admin-token-file", tokFile)...)
	require.Contains(t, p1.Logs(), "authentication is on")

	_, err := run(t, nil, "trigger", "list", "--server", p2.GRPC)
	require.ErrorContains(t, err, "UNAUTHENTICATED")

	out, err := run(t, nil, "token", "create", "--server", p1.GRPC, "--token", e2eAdminToken,
		"--name", "shop-ops", "--role", "operator", "--role", "publisher", "--triggers", "shop-", "--sources", "/shop/")
	require.NoError(t, err)
	key := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(key, "syk_"), out)

	applied, err := run(t, strings.NewReader("name: shop-orders\ntarget: {grpc: \"127.0.0.1:1\"}\n"),
		"trigger", "apply", "-f", "-", "--server", p2.GRPC, "--token", key)
	require.NoError(t, err, "the key made through replica 1 works on replica 2")
	require.Contains(t, applied, "shop-orders")
	_, err = run(t, strings.NewReader("name: bank-ledger\ntarget: {grpc: \"127.0.0.1:1\"}\n"),
		"trigger", "apply", "-f", "-", "--server", p2.GRPC, "--token", key)
	require.ErrorContains(t, err, "PERMISSION_DENIED")
	_, err = run(t, nil, "publish", "--server", p1.GRPC, "--token", key, "--type", "com.shop.order", "--source", "/shop/eu", "--data", `{"n":1}`)
	require.NoError(t, err)
	_, err = run(t, nil, "publish", "--server", p1.GRPC, "--token", key, "--type", "com.shop.order", "--source", "/bank/eu", "--data", `{"n":1}`)
	require.ErrorContains(t, err, "PERMISSION_DENIED")

	c2, err := sdk.New(sdk.Config{Address: p2.GRPC, Token: key})
	require.NoError(t, err)
	defer c2.Close()
	ctx := context.Background()
	_, err = c2.ListTriggers(ctx)
	require.NoError(t, err)

	_, err = run(t, nil, "token", "revoke", "shop-ops", "--server", p1.GRPC, "--token", e2eAdminToken)
	require.NoError(t, err)
	revoked := time.Now()
	testenv.Eventually(t, 2*time.Second, func() bool {
		_, err := c2.ListTriggers(ctx)
		return status.Code(err) == codes.Unauthenticated
	}, "replica 2 refuses the revoked key")
	t.Logf("replica 2 refused the key %v after the revocation", time.Since(revoked))

	audit, err := run(t, nil, "audit", "list", "--server", p2.GRPC, "--token", e2eAdminToken)
	require.NoError(t, err)
	for _, want := range []string{"token.create", "trigger.apply", "denied", "token.revoke"} {
		require.Contains(t, audit, want)
	}
}

// TestServeRefusesOpenBindWithoutAuth: without an identity, serve refuses
// a non-loopback address (a precise error naming the flag and the ways
// out) and --check-config reports authentication off.
func TestServeRefusesOpenBindWithoutAuth(t *testing.T) {
	_, err := run(t, nil, "serve", "--http-addr", "0.0.0.0:0", "--grpc-addr", "127.0.0.1:0")
	require.Error(t, err)
	for _, want := range []string{`--http-addr "0.0.0.0:0"`, "authentication is off", "SWITCHYARD_ADMIN_TOKEN", "--insecure-no-auth"} {
		require.ErrorContains(t, err, want)
	}
	out, err := run(t, nil, "serve", "--check-config")
	require.NoError(t, err)
	require.Contains(t, out, "security: OFF authentication")
	require.Contains(t, out, "loopback only")
}
