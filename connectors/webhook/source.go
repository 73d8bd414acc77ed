package webhook

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// Source is the webhook source. Its HTTP handler verifies each request,
// hands it to Read through an unbuffered channel and answers once the
// message is acknowledged.
type Source struct {
	name, typ, source string
	log               *slog.Logger
	// verifier is nil only with insecure: true.
	verifier     verifier
	idHeader     string // "" when the id comes from the verifier or the body
	subjectHdr   string
	contentTypes []string // lower-case media types; nil accepts anything
	maxBody      int64
	timeout      time.Duration
	tolerance    time.Duration // zero for schemes without a signed timestamp
	window       time.Duration
	marks        connectors.Marks
	sharedMarks  bool
	msgs         chan *connectors.Message
	open         atomic.Bool
}

// New builds a webhook source and registers its endpoint. Every field error
// is reported, each naming its field.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, typ: cfg.String(fieldType), source: cfg.String(fieldSource), log: env.Logger,
		idHeader: cfg.String(fieldIDHeader), subjectHdr: cfg.String(fieldSubjectHdr),
		maxBody: int64(cfg.Int(fieldMaxBodyBytes)), timeout: cfg.Duration(fieldTimeout),
		window: cfg.Duration(fieldDedupWindow), marks: env.Marks, sharedMarks: env.Marks != nil,
		msgs: make(chan *connectors.Message),
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("fields.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	scheme, secret, insecure := cfg.String(fieldScheme), cfg.String(fieldSecret), cfg.Bool(fieldInsecure)
	tolerance := cfg.Duration(fieldTolerance)
	switch {
	case secret == "" && !insecure:
		bad(fieldSecret, "required: every request is verified with it (e.g. secret: ${WEBHOOK_SECRET}); "+
			"to accept unsigned requests from anyone who can reach the endpoint, set insecure: true")
	case secret != "" && insecure:
		bad(fieldInsecure, "true with a secret: remove one of them")
	case insecure && scheme != schemeHMAC:
		bad(fieldScheme, "%q verifies signatures, which needs a secret; insecure: true takes unsigned requests", scheme)
	}
	if scheme != schemeHMAC {
		for _, f := range []struct{ name, def string }{{fieldSigHeader, DefaultSignatureHeader}, {fieldAlgorithm, DefaultAlgorithm}, {fieldSigPrefix, DefaultSignaturePrefix}} {
			if cfg.String(f.name) != f.def {
				bad(f.name, "only for scheme hmac; scheme %s fixes its headers", scheme)
			}
		}
	}
	if tolerance < time.Second {
		bad(fieldTolerance, "must be at least 1s, got %s", tolerance)
	}
	key := []byte(secret)
	switch scheme {
	case schemeStandard:
		if secret != "" {
			k, err := standardKey(secret)
			if err != nil {
				bad(fieldSecret, "%v", err) // never the secret itself
			}
			s.verifier = standardVerifier{key: k, tolerance: tolerance}
		}
		s.tolerance = tolerance
		if s.idHeader != "" {
			bad(fieldIDHeader, "not allowed with scheme standard: the event id is the signed %s header", hdrWebhookID)
		}
	case schemeGitHub:
		s.verifier = hmacVerifier{key: key, header: hdrGitHubSignature, prefix: "sha256=", newHash: sha256.New}
		if s.idHeader == "" {
			s.idHeader = hdrGitHubDelivery
		}
	case schemeStripe:
		s.verifier = stripeVerifier{key: key, tolerance: tolerance}
		s.tolerance = tolerance
	case schemeHMAC:
		var newHash func() hash.Hash
		switch strings.ToLower(cfg.String(fieldAlgorithm)) {
		case "sha1":
			newHash = sha1.New
		case "sha256":
			newHash = sha256.New
		case "sha512":
			newHash = sha512.New
		default:
			bad(fieldAlgorithm, "%q: want sha1, sha256 or sha512", cfg.String(fieldAlgorithm))
		}
		s.verifier = hmacVerifier{key: key, header: cfg.String(fieldSigHeader), prefix: cfg.String(fieldSigPrefix), newHash: newHash}
		if cfg.String(fieldSigHeader) == "" {
			bad(fieldSigHeader, "must name a header")
		}
		if s.idHeader == "" {
			s.idHeader = DefaultHMACIDHeader
		}
	default:
		bad(fieldScheme, "%q: want standard, github, stripe or hmac", scheme)
	}
	if insecure {
		s.verifier = nil
	}
	cts, anyType := cfg.StringList(fieldContentTypes), false
	if len(cts) == 0 {
		bad(fieldContentTypes, "must list at least one media type")
	}
	for _, ct := range cts {
		mt, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil || len(params) > 0 || !strings.Contains(mt, "/"):
			bad(fieldContentTypes, "%q is not a media type such as application/json", ct)
		case mt == "*/*":
			anyType = true
		default:
			s.contentTypes = append(s.contentTypes, mt)
		}
	}
	if anyType {
		s.contentTypes = nil // nil accepts anything
	}
	if s.window <= 0 {
		bad(fieldDedupWindow, "must be positive, got %s", s.window)
	}
	if s.maxBody <= 0 {
		bad(fieldMaxBodyBytes, "must be positive, got %d", s.maxBody)
	}
	if s.timeout <= 0 {
		bad(fieldTimeout, "must be positive, got %s", s.timeout)
	}
	if env.HTTP == nil {
		errs = append(errs, errors.New("the webhook source needs the server's HTTP listener"))
	}
	if s.source == "" {
		s.source = "/webhooks/" + env.Name
	}
	if err := wrap.CheckSourceType(s.source, s.typ, fieldSource, fieldType); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.marks == nil {
		s.marks = &localMarks{}
	}
	env.HTTP.Handle("POST /webhooks/"+env.Name, s)
	return s, nil
}

// Connect implements connectors.Source: the endpoint starts taking requests.
// It says what the configuration leaves open.
func (s *Source) Connect(context.Context) error {
	if s.verifier == nil {
		s.log.Warn("webhook source accepts unsigned requests (insecure: true): anyone who can reach the endpoint can inject events")
	}
	for _, ct := range s.contentTypes {
		if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" || ct == "text/plain" {
			s.log.Warn("webhook source accepts a content type that browsers post cross-site without asking", "content_type", ct)
		}
	}
	if s.contentTypes == nil {
		s.log.Warn("webhook source accepts any content type (*/*): browsers can post to it cross-site")
	}
	if !s.sharedMarks {
		s.log.Info("webhook source remembers stored requests in this process only")
	}
	s.open.Store(true)
	return nil
}

// Close implements connectors.Source: the endpoint answers 503 until the
// next Connect.
func (s *Source) Close(context.Context) error { s.open.Store(false); return nil }

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// problem answers with this source's problem type.
func problem(w http.ResponseWriter, status int, title, detail string) {
	connectors.WriteProblem(w, "/problems/webhook", status, title, detail)
}

func answer(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// ServeHTTP receives one webhook: content type, bounded body, signature,
// JSON, then the mark that makes it stored once, then the hand-over.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.open.Load() {
		problem(w, http.StatusServiceUnavailable, "Source not running", "the webhook source "+s.name+" is not running; retry")
		return
	}
	if detail := s.checkContentType(r.Header.Get("Content-Type")); detail != "" {
		problem(w, http.StatusUnsupportedMediaType, "Unsupported content type", detail)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		problem(w, http.StatusBadRequest, "Unreadable body", err.Error())
		return
	}
	if int64(len(body)) > s.maxBody {
		problem(w, http.StatusRequestEntityTooLarge, "Body too large", fmt.Sprintf("the body exceeds %d bytes", s.maxBody))
		return
	}
	var v verified
	if s.verifier != nil {
		var ref *refusal
		if v, ref = s.verifier.verify(r.Header, body, time.Now()); ref != nil {
			s.log.Debug("webhook refused", "status", ref.status, "reason", ref.title, "remote", r.RemoteAddr)
			problem(w, ref.status, ref.title, ref.detail)
			return
		}
	}
	ev, ref := s.event(r.Header, body, v)
	if ref != nil {
		problem(w, ref.status, ref.title, ref.detail)
		return
	}
	if !json.Valid(body) {
		problem(w, http.StatusBadRequest, "Not JSON", "the webhook body must be JSON")
		return
	}
	// Refused here rather than by the runner, which drops an invalid event
	// after acknowledging it: the sender must hear that it was not stored.
	if err := cloudevent.Validate(ev); err != nil {
		problem(w, http.StatusBadRequest, "Invalid event", "the id or subject header does not make a valid CloudEvent: "+err.Error())
		return
	}
	s.store(w, r, ev, markKey(ev.GetId(), body), v.ts)
}

// checkContentType returns why a Content-Type is refused, "" if accepted.
func (s *Source) checkContentType(ct string) string {
	if s.contentTypes == nil {
		return ""
	}
	accepted := strings.Join(s.contentTypes, ", ")
	if ct == "" {
		return "the request has no Content-Type; send one of: " + accepted
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "the Content-Type is malformed; send one of: " + accepted
	}
	if slices.Contains(s.contentTypes, mt) {
		return ""
	}
	if len(mt) > 100 {
		mt = mt[:100] + "…"
	}
	return fmt.Sprintf("Content-Type %s is not accepted; send one of: %s", mt, accepted)
}

// store hands ev over unless a copy of the request was stored already, and
// answers: 202 once stored, 200 for a copy already stored, 503 otherwise
// (see the protocol in dedup.go).
func (s *Source) store(w http.ResponseWriter, r *http.Request, ev *pb.CloudEvent, key string, signedAt time.Time) {
	id := ev.GetId()
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	pending := pendingValue()
	cur, set, err := s.marks.Mark(ctx, key, pending, 2*s.timeout)
	switch {
	case err != nil:
		s.log.Warn("webhook: cannot check for an earlier copy of the request", "id", id, "err", err)
		problem(w, http.StatusServiceUnavailable, "Not stored", "the request could not be checked against earlier copies; retry")
		return
	case !set && cur == markDone:
		answer(w, http.StatusOK, map[string]any{"id": id, "duplicate": true})
		return
	case !set && cur != pending:
		problem(w, http.StatusServiceUnavailable, "In progress", "a copy of this request is being stored; retry")
		return
	}
	// The mark is ours: until it is settled, copies wait.
	settle := context.WithoutCancel(r.Context())
	drop := func() {
		c, cancel := context.WithTimeout(settle, 5*time.Second)
		defer cancel()
		if err := s.marks.Drop(c, key); err != nil {
			// The pending mark expires by itself; retries wait until then.
			s.log.Warn("webhook: cannot release the request's mark", "id", id, "err", err)
		}
	}
	done := make(chan error, 1)
	m := &connectors.Message{Event: ev, Position: id, Ack: func(_ context.Context, err error) error {
		done <- err
		return nil
	}}
	select {
	case s.msgs <- m:
	case <-ctx.Done():
		drop()
		problem(w, http.StatusServiceUnavailable, "Busy", "the event could not be taken in time; retry")
		return
	}
	// Once handed over, the runner acknowledges it exactly once.
	if err := <-done; err != nil {
		drop()
		problem(w, http.StatusServiceUnavailable, "Not stored", err.Error())
		return
	}
	ttl := s.window
	if !signedAt.IsZero() {
		// A signed request verifies until its timestamp is tolerance old:
		// remember it at least that long (plus a second for rounding).
		ttl = max(ttl, time.Until(signedAt.Add(s.tolerance))+time.Second)
	}
	c, cancelPut := context.WithTimeout(settle, 5*time.Second)
	defer cancelPut()
	if err := s.marks.Put(c, key, markDone, ttl); err != nil {
		// Stored all the same; a copy gets 503 until the pending mark
		// expires, and is then stored again (a duplicate, never a loss).
		s.log.Warn("webhook: cannot mark the request stored", "id", id, "err", err)
	}
	answer(w, http.StatusAccepted, map[string]any{"id": id})
}

// event wraps body. The id is the signed delivery id when the scheme signs
// one, else the id header's value, else the body's SHA-256.
func (s *Source) event(h http.Header, body []byte, v verified) (*pb.CloudEvent, *refusal) {
	id := v.id
	if id == "" && s.idHeader != "" {
		hv, ref := header(h, s.idHeader, maxIDHeader)
		if ref != nil {
			return nil, ref
		}
		id = strings.TrimSpace(hv)
	}
	if id == "" {
		sum := sha256.Sum256(body)
		id = hex.EncodeToString(sum[:])
	}
	ev := &pb.CloudEvent{
		Id: id, Source: s.source, SpecVersion: "1.0", Type: s.typ,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.Now()}},
		},
	}
	if utf8.Valid(body) {
		ev.Data = &pb.CloudEvent_TextData{TextData: string(body)}
	} else { // JSON with invalid UTF-8 inside strings: keep the bytes as they are
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: body}
	}
	if s.subjectHdr != "" {
		sub, ref := header(h, s.subjectHdr, maxIDHeader)
		if ref != nil {
			return nil, ref
		}
		if sub != "" {
			ev.Attributes["subject"] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: sub}}
		}
	}
	return ev, nil
}

var _ connectors.Source = (*Source)(nil)
