package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "FN_TOKEN", "fn-token", "x1", "9", strings.Repeat("a", 128)} {
		require.True(t, ValidName(n), n)
	}
	for _, n := range []string{"", "-a", "_a", "a/b", "..", "a.b", "a b", "é", strings.Repeat("a", 129), "a\x00"} {
		require.False(t, ValidName(n), n)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("SWITCHYARD_SECRET_FN_TOKEN", "s3cret")
	t.Setenv("SWITCHYARD_SECRET_EMPTY", "")
	t.Setenv("OTHER_FN_TOKEN", "other")
	v, err := Env{}.Lookup("fn-token")
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(v))
	v, err = Env{}.Lookup("FN_TOKEN")
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(v))
	v, err = Env{Prefix: "OTHER_"}.Lookup("fn_token")
	require.NoError(t, err)
	require.Equal(t, "other", string(v))
	for _, n := range []string{"missing", "empty", "../x"} {
		_, err = Env{}.Lookup(n)
		require.ErrorIs(t, err, ErrNotFound, n)
	}
	_, err = Env{}.Lookup("missing")
	require.ErrorContains(t, err, "SWITCHYARD_SECRET_MISSING")
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fn-token"), []byte("s3cret\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "crlf"), []byte("v\r\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), make([]byte, MaxBytes+1), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(dir), "outside"), []byte("no"), 0o600))
	d := Dir{Path: dir}
	v, err := d.Lookup("fn-token")
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(v))
	v, err = d.Lookup("crlf")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	for _, n := range []string{"missing", "empty", "../outside", "..", ""} {
		_, err = d.Lookup(n)
		require.ErrorIs(t, err, ErrNotFound, n)
	}
	_, err = d.Lookup("big")
	require.ErrorContains(t, err, "longer than")
	require.NotErrorIs(t, err, ErrNotFound)
	_, err = Dir{}.Lookup("fn-token")
	require.ErrorIs(t, err, ErrNotFound)

	// Rotation: the next lookup reads the new file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fn-token"), []byte("next"), 0o600))
	v, err = d.Lookup("fn-token")
	require.NoError(t, err)
	require.Equal(t, "next", string(v))
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("from-dir"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), make([]byte, MaxBytes+1), 0o600))
	t.Setenv("SWITCHYARD_SECRET_A", "from-env")
	t.Setenv("SWITCHYARD_SECRET_B", "b")
	t.Setenv("SWITCHYARD_SECRET_BIG", "small")
	c := Chain{Env{}, Dir{Path: dir}}
	v, err := c.Lookup("a")
	require.NoError(t, err)
	require.Equal(t, "from-env", string(v))
	v, err = Chain{Dir{Path: dir}, Env{}}.Lookup("a")
	require.NoError(t, err)
	require.Equal(t, "from-dir", string(v))
	v, err = Chain{Dir{Path: dir}, Env{}}.Lookup("b")
	require.NoError(t, err)
	require.Equal(t, "b", string(v))
	// A broken secret is an error, not a reason to look elsewhere.
	_, err = Chain{Dir{Path: dir}, Env{}}.Lookup("big")
	require.ErrorContains(t, err, "longer than")
	_, err = c.Lookup("none")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = Chain{}.Lookup("a")
	require.ErrorIs(t, err, ErrNotFound)
}
