package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEnvPrefix starts the environment variables Env reads.
const DefaultEnvPrefix = "SWITCHYARD_SECRET_"

// MaxBytes bounds a secret's value.
const MaxBytes = 64 << 10

// ErrNotFound reports a name no resolver knows.
var ErrNotFound = errors.New("secret not found")

// Resolver returns the current value of named secrets. Implementations
// are safe for concurrent use and never include a value in an error.
type Resolver interface {
	// Lookup returns the value of the secret name (see ValidName), or an
	// error wrapping ErrNotFound when there is none. An empty value counts
	// as none.
	Lookup(name string) ([]byte, error)
}

// ValidName reports whether name can name a secret: 1 to 128 ASCII
// letters, digits, '_' and '-', starting with a letter or digit. Such a
// name is safe as a file name (no separator, no "..") and maps to an
// environment variable (see Env).
func ValidName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Env reads a secret from the environment variable Prefix+NAME, where NAME
// is the name upper-cased with '-' written '_': the secret "fn-token" is
// SWITCHYARD_SECRET_FN_TOKEN.
type Env struct {
	// Prefix starts the variables' names (DefaultEnvPrefix when empty).
	Prefix string
}

// Variable returns the environment variable that holds the secret name.
func (e Env) Variable(name string) string {
	p := e.Prefix
	if p == "" {
		p = DefaultEnvPrefix
	}
	return p + strings.ReplaceAll(strings.ToUpper(name), "-", "_")
}

// Lookup implements Resolver.
func (e Env) Lookup(name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q is not a valid secret name", ErrNotFound, name)
	}
	v, ok := os.LookupEnv(e.Variable(name))
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: %s is not set", ErrNotFound, e.Variable(name))
	}
	if len(v) > MaxBytes {
		return nil, fmt.Errorf("secret %s: longer than %d bytes", name, MaxBytes)
	}
	return []byte(v), nil
}

// Dir reads a secret from the file of that name in a directory. A final
// line break is not part of the value (editors and `echo` add one).
type Dir struct {
	// Path is the directory.
	Path string
}

// Lookup implements Resolver.
func (d Dir) Lookup(name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q is not a valid secret name", ErrNotFound, name)
	}
	if d.Path == "" {
		return nil, fmt.Errorf("%w: no secrets directory", ErrNotFound)
	}
	f, err := os.Open(filepath.Join(d.Path, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no file %s in %s", ErrNotFound, name, d.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("secret %s: longer than %d bytes", name, MaxBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: file %s in %s is empty", ErrNotFound, name, d.Path)
	}
	return b, nil
}

// Chain tries its resolvers in order and returns the first value found.
type Chain []Resolver

// Lookup implements Resolver.
func (c Chain) Lookup(name string) ([]byte, error) {
	var errs []error
	for _, r := range c {
		v, err := r.Lookup(name)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, ErrNotFound) {
			return nil, errors.Join(errs...)
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: no secret resolver configured", ErrNotFound)
	}
	return nil, errors.Join(errs...)
}
