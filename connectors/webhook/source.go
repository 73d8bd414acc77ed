package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/connectors"
)

// Source is the webhook source. Its HTTP handler hands each request to Read
// through an unbuffered channel and answers once the message is acknowledged.
type Source struct {
	name, typ, source    string
	secret               []byte
	newHash              func() hash.Hash
	sigHeader, sigPrefix string
	idHeader, subjectHdr string
	maxBody              int64
	timeout              time.Duration
	msgs                 chan *connectors.Message
	open                 atomic.Bool
}

// New builds a webhook source and registers its endpoint.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, typ: cfg.String(fieldType), source: cfg.String(fieldSource),
		secret:    []byte(cfg.String(fieldSecret)),
		sigHeader: cfg.String(fieldSigHeader), sigPrefix: cfg.String(fieldSigPrefix),
		idHeader: cfg.String(fieldIDHeader), subjectHdr: cfg.String(fieldSubjectHdr),
		maxBody: int64(cfg.Int(fieldMaxBodyBytes)), timeout: cfg.Duration(fieldTimeout),
		msgs: make(chan *connectors.Message),
	}
	switch strings.ToLower(cfg.String(fieldAlgorithm)) {
	case "sha1":
		s.newHash = sha1.New
	case "sha256":
		s.newHash = sha256.New
	case "sha512":
		s.newHash = sha512.New
	default:
		return nil, fmt.Errorf("fields.%s: %q: want sha1, sha256 or sha512", fieldAlgorithm, cfg.String(fieldAlgorithm))
	}
	if s.source == "" {
		s.source = "/webhooks/" + env.Name
	}
	if s.maxBody <= 0 {
		return nil, fmt.Errorf("fields.%s: must be positive", fieldMaxBodyBytes)
	}
	if env.HTTP == nil {
		return nil, errors.New("the webhook source needs the server's HTTP listener")
	}
	env.HTTP.Handle("POST /webhooks/"+env.Name, s)
	return s, nil
}

// Connect implements connectors.Source: the endpoint starts taking requests.
func (s *Source) Connect(context.Context) error { s.open.Store(true); return nil }

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

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "/problems/webhook", "title": title, "status": status, "detail": detail})
}

// ServeHTTP receives one webhook.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.open.Load() {
		problem(w, http.StatusServiceUnavailable, "Source not running", "the webhook source "+s.name+" is not running; retry")
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
	if len(s.secret) > 0 && !s.validSignature(body, r.Header.Get(s.sigHeader)) {
		problem(w, http.StatusUnauthorized, "Bad signature", "the "+s.sigHeader+" header does not match the body's HMAC")
		return
	}
	if !json.Valid(body) {
		problem(w, http.StatusBadRequest, "Not JSON", "the webhook body must be JSON")
		return
	}
	ev := s.event(r, body)
	done := make(chan error, 1)
	m := &connectors.Message{Event: ev, Position: ev.GetId(), Ack: func(_ context.Context, err error) error {
		done <- err
		return nil
	}}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	select {
	case s.msgs <- m:
	case <-ctx.Done():
		problem(w, http.StatusServiceUnavailable, "Busy", "the event could not be taken in time; retry")
		return
	}
	// Once handed over, the runner acknowledges it exactly once.
	if err := <-done; err != nil {
		problem(w, http.StatusServiceUnavailable, "Not stored", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": ev.GetId()})
}

func (s *Source) validSignature(body []byte, header string) bool {
	got, ok := strings.CutPrefix(strings.TrimSpace(header), s.sigPrefix)
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(s.newHash, s.secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

func (s *Source) event(r *http.Request, body []byte) *pb.CloudEvent {
	id := strings.TrimSpace(r.Header.Get(s.idHeader))
	if id == "" || s.idHeader == "" {
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
		if sub := r.Header.Get(s.subjectHdr); sub != "" {
			ev.Attributes["subject"] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: sub}}
		}
	}
	return ev
}

var _ connectors.Source = (*Source)(nil)
