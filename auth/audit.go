package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Audit actions: what an admin action did. Handlers record one per call,
// refusals included.
const (
	ActionTriggerCreate    = "trigger.create"
	ActionTriggerApply     = "trigger.apply"
	ActionTriggerUpdate    = "trigger.update"
	ActionTriggerDelete    = "trigger.delete"
	ActionDeadLetterReplay = "deadletter.replay"
	ActionDeadLetterPurge  = "deadletter.purge"
	ActionArchiveReplay    = "archive.replay"
	ActionArchiveCancel    = "archive.cancel"
	ActionLaneSkip         = "trigger.skip_lane"
	ActionTokenCreate      = "token.create"
	ActionTokenRevoke      = "token.revoke"
)

// Audit outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied" // refused: unauthenticated or not permitted
	OutcomeFailed = "failed" // permitted, but it failed (bad input, store down)
)

// Defaults of the audit stream.
const (
	// DefaultAuditMaxLen caps the audit stream (approximately: MAXLEN ~).
	DefaultAuditMaxLen = 100_000
	// MaxAuditList is the most records one List returns.
	MaxAuditList = 1000
)

// Record is one audit record.
type Record struct {
	// ID is the stream entry id (set by List).
	ID string `json:"id,omitempty"`
	// Time is when it was recorded (set by Record when zero; by List from
	// the entry id).
	Time time.Time `json:"time"`
	// Subject and AuthMethod say who: Identity.Subject and Identity.Method.
	Subject    string `json:"subject"`
	AuthMethod Method `json:"auth_method,omitempty"`
	// Method is the API method called ("/switchyard.v1.TriggerService/
	// DeleteTrigger", "POST /events").
	Method string `json:"method,omitempty"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Target names what was acted on: a trigger, a token's name.
	Target string `json:"target,omitempty"`
	// Remote is the caller's address.
	Remote string `json:"remote,omitempty"`
	// Outcome is OutcomeOK, OutcomeDenied or OutcomeFailed.
	Outcome string `json:"outcome"`
	// Detail says more: counts, the error. Credentials found in it are
	// redacted and it is cut at maxAuditDetail bytes.
	Detail string `json:"detail,omitempty"`
}

// RecordFor fills a record for an action by id with the outcome of err
// (nil: ok; unauthenticated or denied: denied; else failed, with the error
// as detail). The caller sets Method and, when useful, Detail.
func RecordFor(id *Identity, action, target string, err error) Record {
	r := Record{Action: action, Target: target, Outcome: OutcomeOK}
	if id != nil {
		r.Subject, r.AuthMethod, r.Remote = id.Subject, id.Method, id.Remote
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrPermissionDenied), errors.Is(err, ErrUnauthenticated):
		r.Outcome, r.Detail = OutcomeDenied, err.Error()
	default:
		r.Outcome, r.Detail = OutcomeFailed, err.Error()
	}
	return r
}

// AuditConfig sets up an Auditor.
type AuditConfig struct {
	// KeyPrefix is the Redis key prefix; the stream is
	// "<prefix>:{auth}:audit". Default DefaultKeyPrefix.
	KeyPrefix string
	// MaxLen caps the stream (approximately). Default DefaultAuditMaxLen.
	MaxLen int64
}

// Auditor writes audit records: one JSON log line (through the logger it
// was given; the server's is JSON) and one entry in a capped Redis stream,
// which `switchyard audit list` reads (List). It is safe for concurrent use.
type Auditor struct {
	rdb    redis.UniversalClient
	key    string
	maxLen int64
	log    *slog.Logger
}

// NewAuditor returns an Auditor writing to rdb and logger (a JSON logger to
// stderr when nil).
func NewAuditor(cfg AuditConfig, rdb redis.UniversalClient, logger *slog.Logger) (*Auditor, error) {
	if rdb == nil {
		return nil, errors.New("auditor: a Redis client is needed")
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultAuditMaxLen
	}
	if cfg.MaxLen < 1 {
		return nil, fmt.Errorf("auditor: max_len must be positive, got %d", cfg.MaxLen)
	}
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return &Auditor{rdb: rdb, key: newKeyLayout(cfg.KeyPrefix).audit, maxLen: cfg.MaxLen, log: logger}, nil
}

// Bounds of the fields of a record, so a hostile target name or error text
// cannot bloat the stream.
const (
	maxAuditField  = 256
	maxAuditDetail = 1024
)

// Record writes r: the log line always, then the stream entry. The error is
// the stream's; the log line was written regardless. Whether an action
// proceeds when its record could not be stored is the caller's policy.
func (a *Auditor) Record(ctx context.Context, r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r = sanitize(r)
	a.log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("subject", r.Subject), slog.String("auth_method", string(r.AuthMethod)),
		slog.String("method", r.Method), slog.String("action", r.Action), slog.String("target", r.Target),
		slog.String("remote", r.Remote), slog.String("outcome", r.Outcome), slog.String("detail", r.Detail))
	err := a.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: a.key, MaxLen: a.maxLen, Approx: true, ID: "*",
		Values: []any{
			"time", strconv.FormatInt(r.Time.UnixMilli(), 10),
			"subject", r.Subject, "auth_method", string(r.AuthMethod), "method", r.Method,
			"action", r.Action, "target", r.Target, "remote", r.Remote,
			"outcome", r.Outcome, "detail", r.Detail,
		},
	}).Err()
	if err != nil {
		return fmt.Errorf("%w: audit record: %v", ErrUnavailable, err)
	}
	return nil
}

// List returns up to limit records (MaxAuditList at most; 100 when limit is
// zero or less), oldest first: those recorded at or after since, or, when
// since is zero, the latest ones.
func (a *Auditor) List(ctx context.Context, since time.Time, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxAuditList)
	var msgs []redis.XMessage
	var err error
	if since.IsZero() {
		msgs, err = a.rdb.XRevRangeN(ctx, a.key, "+", "-", int64(limit)).Result()
		slices.Reverse(msgs)
	} else {
		msgs, err = a.rdb.XRangeN(ctx, a.key, strconv.FormatInt(max(since.UnixMilli(), 0), 10), "+", int64(limit)).Result()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: audit list: %v", ErrUnavailable, err)
	}
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, recordOf(m))
	}
	return out, nil
}

func recordOf(m redis.XMessage) Record {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	r := Record{
		ID: m.ID, Subject: s("subject"), AuthMethod: Method(s("auth_method")), Method: s("method"),
		Action: s("action"), Target: s("target"), Remote: s("remote"), Outcome: s("outcome"), Detail: s("detail"),
	}
	if ms, err := strconv.ParseInt(s("time"), 10, 64); err == nil {
		r.Time = time.UnixMilli(ms)
	} else if ms, err := strconv.ParseInt(strings.SplitN(m.ID, "-", 2)[0], 10, 64); err == nil {
		r.Time = time.UnixMilli(ms)
	}
	return r
}

// sanitize bounds every field and redacts credentials.
func sanitize(r Record) Record {
	for _, f := range []*string{&r.Subject, &r.Method, &r.Action, &r.Target, &r.Remote, &r.Outcome} {
		*f = truncate(Redact(*f), maxAuditField)
	}
	r.Detail = truncate(Redact(r.Detail), maxAuditDetail)
	return r
}

var (
	apiKeyRE = regexp.MustCompile(`syk_([a-z2-7]{16})_[a-z2-7]+`)
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
	bearerRE = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*`)
)

// Redact replaces credentials in s: API keys keep their public id
// ("syk_<id>_[REDACTED]"), JWTs and other bearer tokens become
// "[REDACTED]". Audit records pass every field through it; use it for any
// text that may quote a request.
func Redact(s string) string {
	s = bearerRE.ReplaceAllString(s, "${1}[REDACTED]")
	s = apiKeyRE.ReplaceAllString(s, "syk_${1}_[REDACTED]")
	return jwtRE.ReplaceAllString(s, "[REDACTED]")
}
