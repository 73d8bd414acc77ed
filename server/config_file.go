package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/router"
	"github.com/switchyard-io/switchyard/router/store"
)

// FileConfig is the server's configuration file (`switchyard serve --config
// FILE`, YAML or JSON). Unknown keys are errors. In string values, ${VAR}
// is replaced from the environment (an unset VAR is an error naming it),
// ${VAR:-default} falls back to default, $${ is a literal ${, and every
// other $ is kept; keys and comments are never expanded. A command-line
// flag given explicitly takes precedence over the file (and
// SWITCHYARD_REDIS_URL over redis_url).
//
// The tags document each key: docs/config.md is generated from them and
// from DefaultFileConfig (go test ./server -run TestConfigDocs -update; the
// test fails when the page is stale). `flag` names the serve flag setting
// the same thing, `type` overrides the type shown.
type FileConfig struct {
	HTTPAddr string `json:"http_addr,omitempty" flag:"http-addr" doc:"Address of the HTTP listener: POST /events, /healthz, /readyz, /metrics and the push sources' endpoints (/webhooks/{name}, /s3/{name}). Port 0 picks a free port; the address bound is logged. The default is loopback while authentication is off, :8080 (every interface) with it; without authentication a non-loopback address is refused unless --insecure-no-auth. Equal to grpc_addr (with a port other than 0): one listener serves both, gRPC told apart by its content-type on HTTP/2 (over TLS, HTTP/1.1 and HTTP/2 by ALPN; without, gRPC with HTTP/2 prior knowledge)."`
	GRPCAddr string `json:"grpc_addr,omitempty" flag:"grpc-addr" doc:"Address of the gRPC API (events, triggers, dead letters, sources, tokens, audit, health). Port 0 picks a free port. The default is loopback while authentication is off, :9090 (every interface) with it."`
	RedisURL string `json:"redis_url,omitempty" flag:"redis-url" doc:"Redis holding all state: one server (redis://[user:password@]host:port/db, rediss:// for TLS), a Redis Cluster (redis+cluster://[user:password@]h1:p1,h2:p2,…, rediss+cluster:// for TLS; any reachable nodes find the rest) or a master behind Sentinel (redis+sentinel://[user:password@]s1:p1,s2:p2,…/master-name[/db], rediss+sentinel:// for TLS; user and password are the master's, the sentinels' own go in the options sentinel_username and sentinel_password); go-redis options (dial_timeout, pool_size, …) as query parameters. The environment variable SWITCHYARD_REDIS_URL takes precedence. Empty: the embedded in-process store, which keeps everything in memory (a restart loses it) and refuses sources that confirm what they read unless allow_volatile_sources is set."`

	// Redis deployment and durability (server/redis.go).
	RedisCluster bool   `json:"redis_cluster,omitempty" flag:"redis-cluster" doc:"Read a redis:// or rediss:// redis_url as the nodes of a Redis Cluster, as redis+cluster:// is read."`
	AckAfter     string `json:"ack_after,omitempty" flag:"ack-after" doc:"When a publish is answered: write (once the Redis master has its events; a failover before its replicas have them loses them) or replicas=N (once N replicas have them too, by Redis WAIT on the connection that wrote them; a publish they do not confirm within ack_timeout is answered 503 with Retry-After, and its events may still be delivered)."`
	AckTimeout   string `json:"ack_timeout,omitempty" flag:"ack-timeout" type:"duration" doc:"How long a publish waits for the replicas ack_after asks for."`

	// Cluster coherence (router/cluster.go).
	TriggerSyncTimeout string `json:"trigger_sync_timeout,omitempty" flag:"trigger-sync-timeout" type:"duration" doc:"How long a trigger change waits for every live instance to serve it before it answers anyway, naming the instances that lag."`
	HeartbeatInterval  string `json:"heartbeat_interval,omitempty" flag:"heartbeat-interval" type:"duration" doc:"How often an instance renews its entry in the registry of instances; one silent for three intervals counts as gone. Use the same value on every instance."`

	// KeyPrefix is restricted (see validKeyPrefix) because it is pasted
	// into every Redis key, beside the braces that pick hash slots.
	KeyPrefix       string `json:"key_prefix,omitempty" flag:"key-prefix" doc:"Prefix of every Redis key: instances sharing a Redis and a prefix are one cluster. 1–64 letters, digits, '-', '_' and '.', starting with a letter or digit."`
	MaxEventBytes   int64  `json:"max_event_bytes,omitempty" flag:"max-event-bytes" doc:"Largest accepted event in bytes: HTTP 413 beyond; over gRPC an event beyond is refused with INVALID_ARGUMENT naming it."`
	MaxBatchBytes   int64  `json:"max_batch_bytes,omitempty" flag:"max-batch-bytes" doc:"Largest accepted batch request body in bytes (a batch also holds at most 1000 events, counted while decoding). A gRPC message may hold the larger of max_batch_bytes and max_event_bytes plus 64 KiB; a larger one is refused with RESOURCE_EXHAUSTED naming that bound, before it is decoded."`
	ShutdownDelay   string `json:"shutdown_delay,omitempty" flag:"shutdown-delay" type:"duration" doc:"How long a shutdown keeps serving after /readyz and the gRPC health service turned unready, before the listeners close: long enough for load balancers to notice (a few of their probe intervals)."`
	ShutdownTimeout string `json:"shutdown_timeout,omitempty" flag:"shutdown-timeout" type:"duration" doc:"Bound of the graceful shutdown: sources finish their batch, listeners stop taking requests, attempts in flight drain."`
	LogLevel        string `json:"log_level,omitempty" flag:"log-level" doc:"debug, info, warn or error."`
	LogFormat       string `json:"log_format,omitempty" flag:"log-format" doc:"json or text (logs go to standard error)."`
	// TLS and transport limits (listen.go, limits.go).
	TLSCertFile          string `json:"tls_cert_file,omitempty" flag:"tls-cert-file" doc:"Certificate chain (PEM) both listeners serve TLS with (TLS 1.2 or later; plaintext is then refused). Read again when the file changes (checked on a handshake, at most once a second): a renewed certificate is served without a restart; a change that does not load keeps the previous pair and logs a warning. Needs tls_key_file."`
	TLSKeyFile           string `json:"tls_key_file,omitempty" flag:"tls-key-file" doc:"Private key (PEM) of tls_cert_file, read again with it."`
	TLSClientCAFile      string `json:"tls_client_ca_file,omitempty" flag:"tls-client-ca-file" doc:"CA certificates (PEM) that sign client certificates (mTLS): the listeners ask for a client certificate and verify it against them; one from another CA fails the handshake. It turns authentication on: a certificate's subject (URI SAN, else CN) is an identity, with the roles auth.identities gives it (auth.mtls.client_ca_file, if set, is the one identities come from). Read again when it changes. Needs tls_cert_file."`
	TLSClientAuth        string `json:"tls_client_auth,omitempty" flag:"tls-client-auth" doc:"With tls_client_ca_file: require (a client without a certificate fails the handshake) or request (one is verified if presented; a client without must prove its identity with a bearer token). Default: request when bearer tokens are accepted too (API keys are, unless auth.api_keys.disabled), else require."`
	MaxConnections       int    `json:"max_connections,omitempty" flag:"max-connections" doc:"Connections each listener holds open (a shared port's one listener too). One beyond is closed at once, those open are not affected; refusals are counted in switchyard_listener_connections_refused_total and logged at most once a minute."`
	MaxConcurrentStreams int    `json:"max_concurrent_streams,omitempty" flag:"max-concurrent-streams" doc:"Calls in flight on one HTTP/2 connection (gRPC, and HTTP/2 on a TLS HTTP listener); clients queue the calls beyond it."`
	HTTPBodyTimeout      string `json:"http_body_timeout,omitempty" flag:"http-body-timeout" type:"duration" doc:"Time an HTTP request's body may take to arrive, from the end of its headers (which must arrive within 10 s): a slower request is answered 408 and its connection closed. Bodies are read as they arrive, never allocated from the declared Content-Length."`
	AllowVolatileSources bool   `json:"allow_volatile_sources,omitempty" flag:"allow-volatile-sources" doc:"Run sources on the embedded store although they confirm what they read (to the system they read, or by answering their caller) once it is accepted: a restart then loses every accepted event not yet delivered, and the start-up log names each such source and what it loses. Without it the server refuses to start (and --check-config fails). Ignored with a redis_url."`
	AllowEvictingRedis   bool   `json:"allow_evicting_redis,omitempty" flag:"allow-evicting-redis" doc:"Start although the Redis's maxmemory-policy evicts any key (allkeys-*): when memory runs out it deletes queues, and the events in them, silently. Without it the server refuses to start on such a Redis. With noeviction (or a volatile-* policy) a full Redis makes publishing answer 507 while deliveries go on."`
	MaxTriggers          int    `json:"max_triggers,omitempty" flag:"max-triggers" doc:"Most triggers the store holds; creating one more is refused (INVALID_ARGUMENT naming trigger.name). Negative: no limit."`
	DedupWindow          string `json:"dedup_window,omitempty" flag:"dedup-window" type:"duration" doc:"Dedup window of the triggers that set no delivery.dedup_window: an event whose source and id match an event queued for the trigger within the window is not queued again; its publisher is answered success and the copy counted (trigger stats DUPLICATES, switchyard_events_duplicate_total). It holds across instances and across a crash between the write and the answer (the check is in the script that queues). Each trigger remembers the keys of the events of one window (about 120 bytes each in Redis). 0 (the default): off."`
	MaxDedupWindow       string `json:"max_dedup_window,omitempty" flag:"max-dedup-window" type:"duration" doc:"Longest delivery.dedup_window a trigger may be given (at most 24h); a longer one is refused with INVALID_ARGUMENT naming the field. Default 1h."`
	MaxTriggersPerScope  int    `json:"max_triggers_per_scope,omitempty" flag:"max-triggers-per-scope" doc:"Most triggers under each trigger-name prefix that scopes a caller (a tenant); creating one more through such a caller is refused. Negative: no limit."`
	MaxDeliverAfter      string `json:"max_deliver_after,omitempty" flag:"max-deliver-after" type:"duration" doc:"How far ahead a publisher may ask for delivery with the deliverafter extension (an RFC 3339 time or a duration): an event asking for more is refused (HTTP 400, gRPC INVALID_ARGUMENT naming deliverafter). Delayed events wait in Redis."`
	// Where triggers may send events (egress.go).
	AllowTargets     []string `json:"allow_targets,omitempty" flag:"allow-targets" type:"list of strings" doc:"Target addresses the egress guard opens although they are loopback, link-local (the metadata address 169.254.169.254), private, CGNAT or multicast: CIDR prefixes (10.1.0.0/16), addresses (10.1.2.3), address:port or host:port (fn.internal:443, that name whatever it resolves to). Every other denied address is refused when a trigger is applied (a literal) or dead-lettered TARGET_FORBIDDEN (a name resolving to one), and nothing connects."`
	LoopbackTargets  string   `json:"loopback_targets,omitempty" flag:"loopback-targets" doc:"auto (loopback targets allowed while both listeners are on loopback, as in the quickstart; denied otherwise), allow or deny."`
	RequireTargetTLS bool     `json:"require_target_tls,omitempty" flag:"require-target-tls" doc:"Refuse plaintext targets (grpc host:port, http://) when a trigger is applied; attempts of triggers stored before are dead-lettered TARGET_FORBIDDEN."`
	TargetCAFile     string   `json:"target_ca_file,omitempty" flag:"target-ca-file" doc:"CA certificates (PEM) trusted for targets' certificates instead of the system roots, unless a trigger's target.tls names its own. Read again when it changes."`
	TargetCertFile   string   `json:"target_cert_file,omitempty" flag:"target-cert-file" doc:"Client certificate (PEM) presented to TLS targets that ask for one (mTLS to functions), unless a trigger names its own. Needs target_key_file."`
	TargetKeyFile    string   `json:"target_key_file,omitempty" flag:"target-key-file" doc:"Private key (PEM) of target_cert_file."`
	SecretsDir       string   `json:"secrets_dir,omitempty" flag:"secrets-dir" doc:"Directory holding one file per secret that triggers name in target.auth (bearer tokens, webhook signing secrets), such as a mounted Kubernetes secret; SWITCHYARD_SECRET_<NAME> environment variables (name upper-cased, '-' as '_') are read first. Values never appear in the API, the logs or dead letters."`
	// The event archive (router/archive.go).
	ArchiveRetention string `json:"archive_retention,omitempty" flag:"archive-retention" type:"duration" doc:"Keep every accepted event (matched or not) in the archive this long, for replays (switchyard archive replay) and filter tests (filter test --recent). 0 with archive_max_bytes 0: no archive, and publishing pays nothing for it. The archive is one Redis Stream, sy:{arc}:events: on Redis Cluster all of it lives on the master of the {arc} slot."`
	ArchiveMaxBytes  int64  `json:"archive_max_bytes,omitempty" flag:"archive-max-bytes" doc:"Keep about this many bytes of archived events, the oldest trimmed first (as an entry count from the events' average size; Redis trims whole nodes of about 100 entries). 0: no size bound. On the embedded store an archive is always bounded: 64 MiB unless set."`
	// Sources are documented per kind in docs/connectors.
	Sources []connectors.SourceConfig `json:"sources,omitempty" type:"list" doc:"The sources (connectors) to run, each with a name (lower-case letters, digits, '-' and '_'), a kind and the kind's fields; see [docs/connectors](connectors/)."`
	// Auth's keys are those of auth.Config; the README's Security section
	// shows them.
	Auth *auth.Config `json:"auth,omitempty" type:"mapping" doc:"Authentication (see the README's Security section): admin_token_file, api_keys (disabled, revocation_delay, cache_size), jwt (jwks_url or jwks_file, issuer, audiences, claims), mtls (client_ca_file), identities (subject, method, roles, scope). The bootstrap admin token itself never goes in the file: it comes from SWITCHYARD_ADMIN_TOKEN or the file admin_token_file (or --admin-token-file) names. Without any identity configured authentication is off and the listeners must be on loopback."`
}

// DefaultFileConfig is what every key means when it is absent (the docs
// show it; a test checks that applying it changes nothing).
func DefaultFileConfig() FileConfig {
	return FileConfig{
		HTTPAddr: LoopbackHTTPAddr, GRPCAddr: LoopbackGRPCAddr, KeyPrefix: store.DefaultPrefix,
		MaxEventBytes: cloudevent.DefaultMaxEventBytes, MaxBatchBytes: cloudevent.DefaultMaxBatchBytes,
		ShutdownTimeout: DefaultShutdownTimeout.String(), LogLevel: DefaultLogLevel, LogFormat: DefaultLogFormat,
		MaxConnections: DefaultMaxConnections, MaxConcurrentStreams: DefaultMaxConcurrentStreams, HTTPBodyTimeout: DefaultBodyTimeout.String(),
		AckAfter: AckAfterWrite, AckTimeout: router.DefaultAckTimeout.String(), ShutdownDelay: "0s",
		LoopbackTargets:    LoopbackAuto,
		TriggerSyncTimeout: router.DefaultTriggerSyncTimeout.String(), HeartbeatInterval: router.DefaultHeartbeatInterval.String(),
		MaxTriggers: router.DefaultMaxTriggers, MaxTriggersPerScope: router.DefaultMaxTriggersPerScope,
		MaxDeliverAfter:  router.DefaultMaxDeliverAfter.String(),
		ArchiveRetention: "0s",
	}
}

// Defaults of the logging keys.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "json"
)

// LoadFile reads a configuration file and checks its syntax, its keys and
// the values it can check alone (durations, log settings); Check and New
// validate the rest. Every problem is reported, each naming its key and
// line.
func LoadFile(path string) (FileConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, err
	}
	fc, err := parseFile(raw, os.LookupEnv)
	if err != nil {
		return FileConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return fc, nil
}

// parseFile decodes a configuration file, expanding the environment
// references of its string values with lookup.
func parseFile(raw []byte, lookup func(string) (string, bool)) (FileConfig, error) {
	var fc FileConfig
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fc, err
	}
	if len(doc.Content) == 0 { // empty file, or comments only
		return fc, nil
	}
	root := doc.Content[0]
	if err := errors.Join(checkKeys(root), expandNode(root, "", lookup)); err != nil {
		return fc, err
	}
	var tree any
	if err := root.Decode(&tree); err != nil {
		return fc, err
	}
	if _, ok := tree.(map[string]any); !ok && tree != nil {
		return fc, fmt.Errorf("line %d: the file must be a mapping of keys (http_addr:, sources:, …)", root.Line)
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return fc, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, err
	}
	for i := range fc.Sources {
		fc.Sources[i].Fields = normalizeNumbers(fc.Sources[i].Fields)
	}
	var errs []error
	if fc.ShutdownTimeout != "" {
		if _, err := time.ParseDuration(fc.ShutdownTimeout); err != nil {
			errs = append(errs, fmt.Errorf("shutdown_timeout: %w", err))
		}
	}
	if fc.HTTPBodyTimeout != "" {
		if d, err := time.ParseDuration(fc.HTTPBodyTimeout); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("http_body_timeout: want a positive duration (30s), got %q", fc.HTTPBodyTimeout))
		}
	}
	if fc.ArchiveMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("archive_max_bytes: must not be negative"))
	}
	for key, d := range map[string]string{"ack_timeout": fc.AckTimeout, "shutdown_delay": fc.ShutdownDelay, "dedup_window": fc.DedupWindow, "max_dedup_window": fc.MaxDedupWindow, "max_deliver_after": fc.MaxDeliverAfter, "archive_retention": fc.ArchiveRetention} {
		if d == "" {
			continue
		}
		if v, err := time.ParseDuration(d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		} else if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", key))
		}
	}
	switch fc.LoopbackTargets {
	case "", LoopbackAuto, LoopbackAllow, LoopbackDeny:
	default:
		errs = append(errs, fmt.Errorf("loopback_targets: want auto, allow or deny, got %q", fc.LoopbackTargets))
	}
	for key, d := range map[string]string{"trigger_sync_timeout": fc.TriggerSyncTimeout, "heartbeat_interval": fc.HeartbeatInterval} {
		if d == "" {
			continue
		}
		if v, err := time.ParseDuration(d); err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration (5s), got %q", key, d))
		}
	}
	if _, err := ParseAckAfter(fc.AckAfter); err != nil {
		errs = append(errs, fmt.Errorf("ack_after: %w", err))
	}
	if fc.LogLevel != "" {
		if _, err := ParseLogLevel(fc.LogLevel); err != nil {
			errs = append(errs, fmt.Errorf("log_level: %w", err))
		}
	}
	if fc.LogFormat != "" && fc.LogFormat != "json" && fc.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format: want json or text, got %q", fc.LogFormat))
	}
	return fc, errors.Join(errs...)
}

// expandNode expands the environment references of every string scalar
// under n, in place. A value stays a string whatever it expands to: a
// secret of digits is not a number. Unset variables are errors naming the
// key path and line.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	var errs []error
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.ShortTag() != "!!str" && k.ShortTag() != "!!merge") {
				errs = append(errs, fmt.Errorf("line %d: %s: keys must be strings", k.Line, orRoot(path)))
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			errs = append(errs, expandNode(n.Content[i+1], p, lookup))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			errs = append(errs, expandNode(c, path+"["+strconv.Itoa(i)+"]", lookup))
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" {
			return nil
		}
		v, missing := expandEnv(n.Value, lookup)
		for _, name := range missing {
			errs = append(errs, fmt.Errorf("line %d: %s: ${%s} is not set in the environment (write ${%s:-} to allow it to be empty)", n.Line, orRoot(path), name, name))
		}
		n.Value = v
	}
	return errors.Join(errs...)
}

// checkKeys reports every key the file does not know, with its line (the
// JSON decoder behind it would name only the first, without a line).
func checkKeys(root *yaml.Node) error {
	if root.Kind != yaml.MappingNode {
		return nil
	}
	top, src := jsonKeys(reflect.TypeFor[FileConfig]()), jsonKeys(reflect.TypeFor[connectors.SourceConfig]())
	var errs []error
	unknown := func(k *yaml.Node, path string, known []string) {
		if !slices.Contains(known, k.Value) && k.ShortTag() != "!!merge" {
			errs = append(errs, fmt.Errorf("line %d: %s: unknown key (known: %s)", k.Line, path, strings.Join(known, ", ")))
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		unknown(k, k.Value, top)
		if k.Value != "sources" || v.Kind != yaml.SequenceNode {
			continue
		}
		for j, s := range v.Content {
			if s.Kind != yaml.MappingNode {
				errs = append(errs, fmt.Errorf("line %d: sources[%d]: want a mapping with name, kind and fields", s.Line, j))
				continue
			}
			for m := 0; m+1 < len(s.Content); m += 2 {
				unknown(s.Content[m], fmt.Sprintf("sources[%d].%s", j, s.Content[m].Value), src)
			}
		}
	}
	return errors.Join(errs...)
}

// jsonKeys lists the JSON names of a struct's fields, in order.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// ParseLogLevel parses debug, info, warn or error (any case, and slog's
// offsets such as info+2).
func ParseLogLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return lv, nil
}

// Apply copies the file's settings into cfg where cfg has none (flags and
// the environment were applied first and win).
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
	cfg.RedisCluster = cfg.RedisCluster || fc.RedisCluster
	if cfg.AckAfter == "" {
		cfg.AckAfter = fc.AckAfter
	}
	if cfg.Router.AckTimeout == 0 && fc.AckTimeout != "" {
		cfg.Router.AckTimeout, _ = time.ParseDuration(fc.AckTimeout)
	}
	if cfg.ShutdownDelay == 0 && fc.ShutdownDelay != "" {
		cfg.ShutdownDelay, _ = time.ParseDuration(fc.ShutdownDelay)
	}
	if cfg.Egress.AllowTargets == nil {
		cfg.Egress.AllowTargets = fc.AllowTargets
	}
	if cfg.Egress.LoopbackTargets == "" {
		cfg.Egress.LoopbackTargets = fc.LoopbackTargets
	}
	cfg.Egress.RequireTLS = cfg.Egress.RequireTLS || fc.RequireTargetTLS
	if cfg.Egress.CAFile == "" {
		cfg.Egress.CAFile = fc.TargetCAFile
	}
	if cfg.Egress.CertFile == "" && cfg.Egress.KeyFile == "" {
		cfg.Egress.CertFile, cfg.Egress.KeyFile = fc.TargetCertFile, fc.TargetKeyFile
	}
	if cfg.Egress.SecretsDir == "" {
		cfg.Egress.SecretsDir = fc.SecretsDir
	}
	if cfg.Router.TriggerSyncTimeout == 0 && fc.TriggerSyncTimeout != "" {
		cfg.Router.TriggerSyncTimeout, _ = time.ParseDuration(fc.TriggerSyncTimeout)
	}
	if cfg.Router.HeartbeatInterval == 0 && fc.HeartbeatInterval != "" {
		cfg.Router.HeartbeatInterval, _ = time.ParseDuration(fc.HeartbeatInterval)
	}
	if cfg.Router.Prefix == "" {
		cfg.Router.Prefix = fc.KeyPrefix
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
	cfg.TLS.CertFile = cmp.Or(cfg.TLS.CertFile, fc.TLSCertFile)
	cfg.TLS.KeyFile = cmp.Or(cfg.TLS.KeyFile, fc.TLSKeyFile)
	cfg.TLS.ClientCAFile = cmp.Or(cfg.TLS.ClientCAFile, fc.TLSClientCAFile)
	cfg.TLS.ClientAuth = cmp.Or(cfg.TLS.ClientAuth, fc.TLSClientAuth)
	cfg.Transport.MaxConnections = cmp.Or(cfg.Transport.MaxConnections, fc.MaxConnections)
	cfg.Transport.MaxConcurrentStreams = cmp.Or(cfg.Transport.MaxConcurrentStreams, fc.MaxConcurrentStreams)
	if cfg.Transport.BodyTimeout == 0 && fc.HTTPBodyTimeout != "" {
		cfg.Transport.BodyTimeout, _ = time.ParseDuration(fc.HTTPBodyTimeout)
	}
	cfg.AllowVolatileSources = cfg.AllowVolatileSources || fc.AllowVolatileSources
	cfg.Router.AllowEvictingRedis = cfg.Router.AllowEvictingRedis || fc.AllowEvictingRedis
	if cfg.Router.MaxTriggers == 0 {
		cfg.Router.MaxTriggers = fc.MaxTriggers
	}
	if cfg.Router.MaxDeliverAfter == 0 && fc.MaxDeliverAfter != "" {
		cfg.Router.MaxDeliverAfter, _ = time.ParseDuration(fc.MaxDeliverAfter)
	}
	if cfg.Router.MaxTriggersPerScope == 0 {
		cfg.Router.MaxTriggersPerScope = fc.MaxTriggersPerScope
	}
	if cfg.Router.DedupWindow == 0 && fc.DedupWindow != "" {
		cfg.Router.DedupWindow, _ = time.ParseDuration(fc.DedupWindow)
	}
	if cfg.Router.MaxDedupWindow == 0 && fc.MaxDedupWindow != "" {
		cfg.Router.MaxDedupWindow, _ = time.ParseDuration(fc.MaxDedupWindow)
	}
	if cfg.Router.Archive.Retention == 0 && fc.ArchiveRetention != "" {
		cfg.Router.Archive.Retention, _ = time.ParseDuration(fc.ArchiveRetention)
	}
	if cfg.Router.Archive.MaxBytes == 0 {
		cfg.Router.Archive.MaxBytes = fc.ArchiveMaxBytes
	}
	cfg.Sources = append(cfg.Sources, fc.Sources...)
	if fc.Auth != nil {
		// The flag and the environment win over the file.
		a := *fc.Auth
		if cfg.Auth.AdminTokenFile != "" {
			a.AdminTokenFile = cfg.Auth.AdminTokenFile
		}
		a.AdminToken = cfg.Auth.AdminToken
		a.KeyPrefix = cfg.Auth.KeyPrefix
		cfg.Auth = a
	}
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
