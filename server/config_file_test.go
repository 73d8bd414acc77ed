package server

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/config.md from FileConfig")

func TestParseFile(t *testing.T) {
	env := envOf(map[string]string{"SECRET": "0042", "DSN_PW": "p$ss", "EMPTY": "", "INJECT": "x\nallow_volatile_sources: true"})
	for name, tc := range map[string]struct {
		file string
		want func(t *testing.T, fc FileConfig)
		errs []string // substrings of the error; none: no error
	}{
		"every key": {
			file: `
http_addr: 127.0.0.1:1
grpc_addr: 127.0.0.1:2
redis_url: redis://:${DSN_PW}@r:6379/1
key_prefix: tenant-a
max_event_bytes: 2048
max_batch_bytes: 4096
shutdown_timeout: 3s
log_level: ${LEVEL:-debug}
log_format: text
tls_cert_file: /tls/server.crt
tls_key_file: /tls/server.key
tls_client_ca_file: /tls/clients.pem
tls_client_auth: request
max_connections: 100
max_concurrent_streams: 10
http_body_timeout: 5s
trigger_sync_timeout: 2s
heartbeat_interval: 500ms
allow_volatile_sources: true
sources:
  - name: hooks
    kind: webhook
    fields: {secret: "${SECRET}", max_body_bytes: 10}
`,
			want: func(t *testing.T, fc FileConfig) {
				want := FileConfig{HTTPAddr: "127.0.0.1:1", GRPCAddr: "127.0.0.1:2", RedisURL: "redis://:p$ss@r:6379/1", KeyPrefix: "tenant-a",
					MaxEventBytes: 2048, MaxBatchBytes: 4096, ShutdownTimeout: "3s", LogLevel: "debug", LogFormat: "text", AllowVolatileSources: true,
					TLSCertFile: "/tls/server.crt", TLSKeyFile: "/tls/server.key", TLSClientCAFile: "/tls/clients.pem", TLSClientAuth: "request",
					MaxConnections: 100, MaxConcurrentStreams: 10, HTTPBodyTimeout: "5s", TriggerSyncTimeout: "2s", HeartbeatInterval: "500ms",
					Sources: []connectors.SourceConfig{{Name: "hooks", Kind: "webhook", Fields: map[string]any{"secret": "0042", "max_body_bytes": int64(10)}}}}
				if !reflect.DeepEqual(fc, want) {
					t.Fatalf("got %#v\nwant %#v", fc, want)
				}
			},
		},
		"an unset variable names itself, its key and its line": {
			file: "http_addr: :1\nsources:\n  - name: hooks\n    kind: webhook\n    fields:\n      secret: ${HOOK_SECRET}\n",
			errs: []string{"line 6: sources[0].fields.secret: ${HOOK_SECRET} is not set"},
		},
		"every unset variable is reported": {
			file: "redis_url: ${A}\ngrpc_addr: ${B}:1\n",
			errs: []string{"line 1: redis_url: ${A} is not set", "line 2: grpc_addr: ${B} is not set"},
		},
		"set but empty is allowed": {
			file: "redis_url: ${EMPTY}\n",
			want: func(t *testing.T, fc FileConfig) {
				if fc.RedisURL != "" {
					t.Fatalf("redis_url %q", fc.RedisURL)
				}
			},
		},
		"dollars in values are kept": {
			file: "redis_url: 'redis://:a$b$$c@h:6379/0'\nsources:\n  - {name: pg, kind: postgres, fields: {dsn: \"postgres://u:$1x@h/db\"}}\n",
			want: func(t *testing.T, fc FileConfig) {
				if fc.RedisURL != "redis://:a$b$$c@h:6379/0" || fc.Sources[0].Fields["dsn"] != "postgres://u:$1x@h/db" {
					t.Fatalf("mangled: %q %q", fc.RedisURL, fc.Sources[0].Fields["dsn"])
				}
			},
		},
		"comments are not expanded": {
			file: "# ${NOT_SET} is replaced from the environment\nhttp_addr: :1 # ${ALSO_NOT_SET}\n",
			want: func(t *testing.T, fc FileConfig) {
				if fc.HTTPAddr != ":1" {
					t.Fatalf("http_addr %q", fc.HTTPAddr)
				}
			},
		},
		"a value cannot inject keys": {
			file: "key_prefix: ${INJECT}\n",
			want: func(t *testing.T, fc FileConfig) {
				if fc.AllowVolatileSources || fc.KeyPrefix != "x\nallow_volatile_sources: true" {
					t.Fatalf("the value became structure: %#v", fc)
				}
			},
		},
		"empty file":    {file: "", want: func(t *testing.T, fc FileConfig) {}},
		"comments only": {file: "# nothing\n", want: func(t *testing.T, fc FileConfig) {}},
		"json":          {file: `{"http_addr": ":1", "sources": []}`, want: func(t *testing.T, fc FileConfig) {}},
		"unknown keys with their lines": {
			file: "http_addr: :1\ncolour: red\nsources:\n  - name: a\n    kind: webhook\n    feilds: {}\n",
			errs: []string{"line 2: colour: unknown key", "line 6: sources[0].feilds: unknown key (known: name, kind, fields)"},
		},
		"wrong type": {file: "max_event_bytes: lots\n", errs: []string{"max_event_bytes"}},
		"bad values": {
			file: "shutdown_timeout: soon\nlog_level: loud\nlog_format: xml\nhttp_body_timeout: -1s\ntrigger_sync_timeout: 0s\nheartbeat_interval: often\n",
			errs: []string{"trigger_sync_timeout: want a positive duration", "heartbeat_interval: want a positive duration", "shutdown_timeout", "log_level: want debug, info, warn or error", "log_format: want json or text", "http_body_timeout: want a positive duration"},
		},
		"not a mapping": {file: "- a\n- b\n", errs: []string{"must be a mapping"}},
		"duplicate key": {file: "http_addr: :1\nhttp_addr: :2\n", errs: []string{"already defined"}},
	} {
		t.Run(name, func(t *testing.T) {
			fc, err := parseFile([]byte(tc.file), env)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.want(t, fc)
				return
			}
			if err == nil {
				t.Fatalf("no error, got %#v", fc)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sy.yaml")
	if err := os.WriteFile(path, []byte("redis_url: ${SWITCHYARD_TEST_SURELY_UNSET}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 1: redis_url: ${SWITCHYARD_TEST_SURELY_UNSET} is not set") {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("absent file: %v", err)
	}
}

// TestDefaultFileConfigIsTheDefault keeps the defaults the docs show true:
// applying them changes nothing against an empty configuration.
func TestDefaultFileConfigIsTheDefault(t *testing.T) {
	var withFile, without Config
	DefaultFileConfig().Apply(&withFile)
	withFile.setDefaults()
	without.setDefaults()
	if withFile.HTTPAddr != without.HTTPAddr || withFile.GRPCAddr != without.GRPCAddr || withFile.Limits != without.Limits ||
		withFile.ShutdownTimeout != without.ShutdownTimeout || withFile.Transport != without.Transport || withFile.TLS != without.TLS {
		t.Fatalf("defaults differ:\n%+v\n%+v", withFile, without)
	}
	if withFile.Router.Prefix != store.DefaultPrefix { // the router applies this default itself
		t.Fatalf("key_prefix default %q, the store's %q", withFile.Router.Prefix, store.DefaultPrefix)
	}
	if _, err := ParseLogLevel(DefaultFileConfig().LogLevel); err != nil {
		t.Fatal(err)
	}
	if withFile.Router.TriggerSyncTimeout != router.DefaultTriggerSyncTimeout || withFile.Router.HeartbeatInterval != router.DefaultHeartbeatInterval {
		t.Fatalf("coherence defaults %v %v", withFile.Router.TriggerSyncTimeout, withFile.Router.HeartbeatInterval)
	}
	var flagsWin Config
	flagsWin.Router.HeartbeatInterval = 3 * time.Second
	FileConfig{HeartbeatInterval: "250ms", TriggerSyncTimeout: "2s"}.Apply(&flagsWin)
	if flagsWin.Router.HeartbeatInterval != 3*time.Second || flagsWin.Router.TriggerSyncTimeout != 2*time.Second {
		t.Fatalf("a flag must win over the file, the file over the default: %v %v", flagsWin.Router.HeartbeatInterval, flagsWin.Router.TriggerSyncTimeout)
	}
}

func TestConfigExampleIsValid(t *testing.T) {
	fc, err := parseFile([]byte(ConfigExample), envOf(map[string]string{"REDIS_PASSWORD": "pw", "GITHUB_WEBHOOK_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	fc.Apply(&cfg)
	if err := Check(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestConfigDocs fails when docs/config.md differs from what FileConfig
// generates. Regenerate with: go test ./server -run TestConfigDocs -update
func TestConfigDocs(t *testing.T) {
	path := filepath.Join("..", "docs", "config.md")
	want := ConfigMarkdown()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale or missing: run go test ./server -run TestConfigDocs -update", path)
	}
	for _, key := range jsonKeys(reflect.TypeFor[FileConfig]()) {
		if !strings.Contains(want, "| `"+key+"` |") {
			t.Errorf("key %s is not documented", key)
		}
	}
}

func TestKeyPrefixValidation(t *testing.T) {
	for p, ok := range map[string]bool{
		"sy": true, "tenant-a": true, "sytest-0a1b2c": true, "a.b_c": true, "A9": true, strings.Repeat("a", 64): true,
		"a{b}": false, "{sy}": false, "a:b": false, "a*": false, "a?": false, "a[b]": false, "a b": false, "-a": false, ".a": false,
		strings.Repeat("a", 65): false, "é": false,
	} {
		cfg := Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"}
		cfg.Router.Prefix = p
		err := cfg.Validate()
		if ok != (err == nil) {
			t.Errorf("prefix %q: %v", p, err)
		}
		if err != nil && !strings.Contains(err.Error(), "key_prefix") {
			t.Errorf("prefix %q: the error does not name key_prefix: %v", p, err)
		}
	}
}
