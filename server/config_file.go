package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/switchyard-io/switchyard/connectors"
)

// FileConfig is the server's configuration file (`switchyard serve --config
// FILE`, YAML or JSON). ${VAR} and $VAR are replaced from the environment
// first, so secrets can stay out of the file. Command-line flags given
// explicitly take precedence over the file.
type FileConfig struct {
	HTTPAddr        string                    `json:"http_addr,omitempty"`
	GRPCAddr        string                    `json:"grpc_addr,omitempty"`
	RedisURL        string                    `json:"redis_url,omitempty"`
	MaxEventBytes   int64                     `json:"max_event_bytes,omitempty"`
	MaxBatchBytes   int64                     `json:"max_batch_bytes,omitempty"`
	ShutdownTimeout string                    `json:"shutdown_timeout,omitempty"`
	Sources         []connectors.SourceConfig `json:"sources,omitempty"`
}

// LoadFile reads a configuration file. Unknown keys are errors.
func LoadFile(path string) (FileConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, err
	}
	js, err := yaml.YAMLToJSON([]byte(os.ExpandEnv(string(raw))))
	if err != nil {
		return FileConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	var fc FileConfig
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&fc); err != nil && err.Error() != "EOF" {
		return FileConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	for i := range fc.Sources {
		fc.Sources[i].Fields = normalizeNumbers(fc.Sources[i].Fields)
	}
	if fc.ShutdownTimeout != "" {
		if _, err := time.ParseDuration(fc.ShutdownTimeout); err != nil {
			return FileConfig{}, fmt.Errorf("%s: shutdown_timeout: %w", path, err)
		}
	}
	return fc, nil
}

// Apply copies the file's settings into cfg where cfg has none.
func (fc FileConfig) Apply(cfg *Config) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = fc.HTTPAddr
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = fc.GRPCAddr
	}
	if cfg.RedisURL == "" {
		cfg.RedisURL = fc.RedisURL
	}
	if cfg.Limits.MaxEventBytes == 0 {
		cfg.Limits.MaxEventBytes = fc.MaxEventBytes
	}
	if cfg.Limits.MaxBatchBytes == 0 {
		cfg.Limits.MaxBatchBytes = fc.MaxBatchBytes
	}
	if cfg.ShutdownTimeout == 0 && fc.ShutdownTimeout != "" {
		cfg.ShutdownTimeout, _ = time.ParseDuration(fc.ShutdownTimeout)
	}
	cfg.Sources = append(cfg.Sources, fc.Sources...)
}

// normalizeNumbers turns json.Number into int64 or float64 so connector
// fields see plain Go values.
func normalizeNumbers(m map[string]any) map[string]any {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
	return m
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		return normalizeNumbers(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
		return x
	}
	return v
}
