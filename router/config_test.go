package router

import (
	"strings"
	"testing"
)

func TestConfigValidateKeyPrefix(t *testing.T) {
	for prefix, ok := range map[string]bool{
		"":                      true, // the default
		"sy":                    true,
		"sytest-0a1b2c":         true,
		"app:switchyard.v2_b":   true,
		"a}:x":                  false,
		"{sy}":                  false,
		"sy*":                   false,
		"s y":                   false,
		"-sy":                   false,
		"sy\n":                  false,
		strings.Repeat("a", 64): true,
		strings.Repeat("a", 65): false,
	} {
		err := Config{Prefix: prefix}.Validate()
		if (err == nil) != ok {
			t.Errorf("prefix %q: err = %v, want ok %v", prefix, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "key prefix") {
			t.Errorf("prefix %q: error %q does not name the key prefix", prefix, err)
		}
	}
}
