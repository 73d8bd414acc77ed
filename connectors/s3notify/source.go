package s3notify

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/connectors"
)

// Source is the s3_notifications source. Its HTTP handler queues every record
// of a notification at once (so the runner reads them back to back, usually
// into one publish) and answers once every one is acknowledged.
type Source struct {
	name        string
	token       [32]byte // SHA-256 of the token, compared in constant time
	hasToken    bool
	tokenHeader string
	decodeKeys  bool
	maxBody     int64
	timeout     time.Duration

	mu    sync.Mutex
	open  bool
	queue []*item
	wake  chan struct{} // signalled (non-blocking, capacity 1) when the queue grows
}

// item is one record waiting to be read; req collects its acknowledgement.
type item struct {
	msg *connectors.Message
	req *request
}

// request is one notification being answered.
type request struct {
	acks chan error // capacity: the number of records
}

// errClosed acknowledges records still queued when the source closes.
var errClosed = errors.New("the source stopped before the record was read")

// New builds an s3_notifications source and registers its endpoint.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, tokenHeader: cfg.String(fieldTokenHeader), decodeKeys: cfg.Bool(fieldDecodeKeys),
		maxBody: int64(cfg.Int(fieldMaxBodyBytes)), timeout: cfg.Duration(fieldTimeout),
		wake: make(chan struct{}, 1),
	}
	tok, insecure := cfg.String(fieldToken), cfg.Bool(fieldInsecure)
	switch {
	case tok == "" && !insecure:
		return nil, fmt.Errorf("fields.%s: required: every request must carry it (e.g. token: ${S3_NOTIFY_TOKEN}); "+
			"to accept notifications from anyone who can reach the endpoint, set insecure: true", fieldToken)
	case tok != "" && insecure:
		return nil, fmt.Errorf("fields.%s: set either a token or insecure: true, not both", fieldInsecure)
	case tok != "":
		s.token, s.hasToken = sha256.Sum256([]byte(tok)), true
		if s.tokenHeader == "" {
			return nil, fmt.Errorf("fields.%s: required when a token is set", fieldTokenHeader)
		}
	default:
		if env.Logger != nil {
			env.Logger.Warn("s3_notifications source takes notifications without a token (insecure: true): anyone who can reach POST /s3/"+env.Name+" may post them",
				"source", env.Name)
		}
	}
	if s.maxBody <= 0 {
		return nil, fmt.Errorf("fields.%s: must be positive, got %d", fieldMaxBodyBytes, s.maxBody)
	}
	if s.timeout <= 0 {
		return nil, fmt.Errorf("fields.%s: must be positive, got %s", fieldTimeout, s.timeout)
	}
	if env.HTTP == nil {
		return nil, errors.New("the s3_notifications source needs the server's HTTP listener")
	}
	env.HTTP.Handle("POST /s3/"+env.Name, s)
	return s, nil
}

// Connect implements connectors.Source: the endpoint starts taking requests.
func (s *Source) Connect(context.Context) error {
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
	return nil
}

// Close implements connectors.Source: records not yet read are refused (their
// requests get 503) and the endpoint answers 503 until the next Connect.
func (s *Source) Close(context.Context) error {
	s.mu.Lock()
	s.open = false
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, it := range q {
		it.req.acks <- errClosed
	}
	return nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return it.msg, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// problem answers with this source's problem type.
func problem(w http.ResponseWriter, status int, title, detail string) {
	connectors.WriteProblem(w, "/problems/s3-notifications", status, title, detail)
}

// ServeHTTP receives one notification.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	if !open {
		problem(w, http.StatusServiceUnavailable, "Source not running", "the s3_notifications source "+s.name+" is not running; retry")
		return
	}
	if s.hasToken && !s.validToken(r.Header.Get(s.tokenHeader)) {
		problem(w, http.StatusUnauthorized, "Bad token", "the "+s.tokenHeader+" header does not carry the configured token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		problem(w, http.StatusBadRequest, "Unreadable body", err.Error())
		return
	}
	if int64(len(body)) > s.maxBody {
		problem(w, http.StatusRequestEntityTooLarge, "Body too large", fmt.Sprintf("the notification exceeds %d bytes", s.maxBody))
		return
	}
	n, err := Decode(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Malformed notification", err.Error())
		return
	}
	events := Events(n, s.decodeKeys)
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = ev.GetId()
	}
	if len(events) > 0 {
		if status, title, detail := s.handOver(r.Context(), events); status != 0 {
			problem(w, status, title, detail)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"ids": ids, "test": n.Test})
}

// handOver queues every event of one notification together and waits until
// each is acknowledged; a non-zero status means they are not all durable.
func (s *Source) handOver(ctx context.Context, events []*pb.CloudEvent) (status int, title, detail string) {
	req := &request{acks: make(chan error, len(events))}
	items := make([]*item, len(events))
	for i, ev := range events {
		items[i] = &item{req: req, msg: &connectors.Message{Event: ev, Position: ev.GetId(),
			Ack: func(_ context.Context, err error) error { req.acks <- err; return nil }}}
	}
	s.mu.Lock()
	if !s.open {
		s.mu.Unlock()
		return http.StatusServiceUnavailable, "Source not running", "the s3_notifications source " + s.name + " is not running; retry"
	}
	s.queue = append(s.queue, items...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var failed error
	pending := len(events)
	for pending > 0 {
		select {
		case err := <-req.acks:
			pending--
			if err != nil && failed == nil {
				failed = err
			}
		case <-ctx.Done():
			// Take back what was not read yet; what was read is acknowledged
			// by the runner exactly once, so wait for those.
			pending -= s.withdraw(req)
			if failed == nil {
				failed = fmt.Errorf("the records could not be stored within %s", s.timeout)
			}
			for ; pending > 0; pending-- {
				<-req.acks
			}
		}
	}
	if failed != nil {
		return http.StatusServiceUnavailable, "Not stored", failed.Error()
	}
	return 0, "", ""
}

// withdraw removes req's unread records from the queue and says how many.
func (s *Source) withdraw(req *request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.queue[:0]
	n := 0
	for _, it := range s.queue {
		if it.req == req {
			n++
			continue
		}
		kept = append(kept, it)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	return n
}

// validToken compares the header (the bare token or "Bearer <token>") with
// the configured token in constant time.
func (s *Source) validToken(header string) bool {
	header = strings.TrimSpace(header)
	bare := header
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		bare = strings.TrimSpace(header[7:])
	}
	a, b := sha256.Sum256([]byte(header)), sha256.Sum256([]byte(bare))
	return subtle.ConstantTimeCompare(a[:], s.token[:])|subtle.ConstantTimeCompare(b[:], s.token[:]) == 1
}

var _ connectors.Source = (*Source)(nil)
