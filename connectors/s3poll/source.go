package s3poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/connectors/internal/wrap"
)

// checkpointKey is where the snapshot lives in the source's checkpoints.
const checkpointKey = "snapshot"

// commitEvery is the least time between two checkpoint writes within one
// long listing pass; with big buckets it grows to ten times what writing the
// checkpoint takes, so checkpoints never cost more than a tenth of the time.
const commitEvery = 5 * time.Second

// Source is the s3 polling source. A lister goroutine lists the bucket every
// poll interval, diffs the listing with what is already durable and hands
// the changes to Read as one pass; it lists again only once the pass is
// fully acknowledged (or refused), so every diff starts from durable state.
type Source struct {
	name         string
	log          *slog.Logger
	cp           connectors.Checkpoints
	endpoint     string
	opts         minio.Options
	bucket       string
	prefix       string
	interval     time.Duration
	emitExisting bool
	versioned    bool

	client *minio.Client

	commitMu sync.Mutex // serializes checkpoint writes

	mu         sync.Mutex
	loaded     bool              // applied was read from the checkpoint
	baseline   bool              // a checkpoint exists (or emit_existing is on)
	applied    map[string]object // the durable listing plus the acknowledged changes
	dirty      int               // acknowledged changes not yet in the checkpoint
	lastCommit time.Time
	commitCost time.Duration // how long the last checkpoint write took

	// Per connection.
	cancel context.CancelFunc
	done   chan struct{}
	passes chan *pass
	fatal  chan error
	cur    *pass // the pass Read is handing out (Read's goroutine only)
	passN  int
}

// change is one difference between two listings.
type change struct {
	kind string // created, updated, deleted
	key  string
	obj  object // the new state; for deleted, the state last seen
	at   int64  // for deleted: when the deletion happened, if known (ns)
}

// pass is the changes found by one listing.
type pass struct {
	n        int
	changes  []change
	next     int
	acked    int
	failed   bool
	finished chan struct{} // closed once every change is acknowledged, or one was refused
	closed   bool
}

// New builds an s3 source from its fields.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, log: env.Logger, cp: env.Checkpoints,
		bucket: cfg.String(fieldBucket), prefix: cfg.String(fieldPrefix),
		interval: cfg.Duration(fieldPollInterval), emitExisting: cfg.Bool(fieldEmitExisting),
		versioned: cfg.Bool(fieldVersioned),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cp == nil {
		return nil, errors.New("the s3 source needs checkpoint storage")
	}
	var errs []error
	endpoint := strings.TrimSpace(cfg.String(fieldEndpoint))
	secure := cfg.Bool(fieldUseSSL)
	switch {
	case strings.HasPrefix(endpoint, "https://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "https://"), true
	case strings.HasPrefix(endpoint, "http://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "http://"), false
	}
	endpoint = strings.TrimSuffix(endpoint, "/")
	if endpoint == "" || strings.ContainsAny(endpoint, "/?# ") {
		errs = append(errs, fmt.Errorf("fields.%s: %q: want host[:port], optionally after http:// or https://", fieldEndpoint, cfg.String(fieldEndpoint)))
	}
	s.endpoint = endpoint
	if err := checkBucketName(s.bucket); err != nil {
		errs = append(errs, fmt.Errorf("fields.%s: %q: %w", fieldBucket, s.bucket, err))
	}
	if s.interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("fields.%s: %s: must be at least 100ms", fieldPollInterval, s.interval))
	}
	ak, sk := cfg.String(fieldAccessKey), cfg.String(fieldSecretKey)
	if (ak == "") != (sk == "") {
		errs = append(errs, fmt.Errorf("fields.%s: give both access_key and secret_key, or neither for anonymous access", fieldSecretKey))
	}
	var lookup minio.BucketLookupType
	switch cfg.String(fieldBucketLookup) {
	case "auto", "":
		lookup = minio.BucketLookupAuto
	case "path":
		lookup = minio.BucketLookupPath
	case "dns":
		lookup = minio.BucketLookupDNS
	default:
		errs = append(errs, fmt.Errorf("fields.%s: %q: want auto, path or dns", fieldBucketLookup, cfg.String(fieldBucketLookup)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.opts = minio.Options{
		Creds:        credentials.NewStaticV4(ak, sk, cfg.String(fieldSessionToken)),
		Secure:       secure,
		Region:       cfg.String(fieldRegion),
		BucketLookup: lookup,
		// Few quick retries: the Runner reconnects with its own backoff and
		// shows the error meanwhile.
		MaxRetries: 3,
	}
	return s, nil
}

// checkBucketName applies the S3 rules loosely (3 to 63 characters of
// lower-case letters, digits, '.', '-' and '_', which some stores allow).
func checkBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("a bucket name has 3 to 63 characters")
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("character %q is not allowed in a bucket name", c)
		}
	}
	return nil
}

// Connect implements connectors.Source: it checks the bucket, loads the
// checkpoint (once per process) and starts listing.
func (s *Source) Connect(ctx context.Context) error {
	if s.client == nil {
		c, err := minio.New(s.endpoint, &s.opts)
		if err != nil {
			return fmt.Errorf("s3 client for %s: %w", s.endpoint, err)
		}
		s.client = c
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %q at %s: %w", s.bucket, s.endpoint, err)
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist at %s", s.bucket, s.endpoint)
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	s.passes, s.fatal, s.cur = make(chan *pass, 1), make(chan error, 1), nil
	go s.lister(lctx, s.done)
	return nil
}

// load reads the checkpoint unless it was read already (a reconnect keeps
// the in-memory state, which is never behind the checkpoint).
func (s *Source) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	b, err := s.cp.Get(ctx, checkpointKey)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	s.applied, s.baseline = map[string]object{}, s.emitExisting
	if b != nil {
		bucket, prefix, objs, err := decodeSnapshot(b)
		switch {
		case err != nil:
			return fmt.Errorf("read checkpoint: %w", err)
		case bucket != s.bucket || prefix != s.prefix:
			s.log.Warn("the checkpoint is of another bucket or prefix; starting afresh",
				"checkpoint_bucket", bucket, "checkpoint_prefix", prefix)
		default:
			s.applied, s.baseline = objs, true
		}
	}
	s.loaded, s.lastCommit = true, time.Now()
	return nil
}

// Close implements connectors.Source: it stops listing and writes what was
// acknowledged since the last checkpoint.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
	}
	s.cur = nil
	s.mu.Lock()
	dirty := s.dirty > 0
	s.mu.Unlock()
	if dirty {
		return s.commit(ctx)
	}
	return nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.passes == nil {
		return nil, fmt.Errorf("%w: not connected", connectors.ErrNotConnected)
	}
	for {
		if p := s.cur; p != nil {
			s.mu.Lock()
			failed := p.failed
			s.mu.Unlock()
			if !failed && p.next < len(p.changes) {
				c := p.changes[p.next]
				p.next++
				return s.message(p, c), nil
			}
			s.cur = nil
		}
		select {
		case p := <-s.passes:
			s.cur = p
		case err := <-s.fatal:
			return nil, fmt.Errorf("%w: %w", connectors.ErrNotConnected, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lister lists the bucket every interval and hands each pass's changes to
// Read, waiting for the pass to be settled before the next listing.
func (s *Source) lister(ctx context.Context, done chan struct{}) {
	defer close(done)
	next := time.Now()
	for {
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		started := time.Now()
		next = started.Add(s.interval)
		listing, markers, err := s.list(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.fatal <- fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, err)
			}
			return
		}
		s.mu.Lock()
		if !s.baseline { // first start without emit_existing
			s.applied, s.baseline, s.dirty = listing, true, s.dirty+1
			s.mu.Unlock()
			if err := s.commit(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("write checkpoint", "err", err)
			}
			continue
		}
		changes := diff(s.applied, listing, markers)
		s.passN++
		p := &pass{n: s.passN, changes: changes, finished: make(chan struct{})}
		s.mu.Unlock()
		if len(changes) == 0 {
			continue
		}
		select {
		case s.passes <- p:
		case <-ctx.Done():
			return
		}
		select {
		case <-p.finished:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		failed := p.failed
		s.mu.Unlock()
		if failed { // list again right away: the refused changes come back
			next = time.Now()
		}
	}
}

// list returns the current state of every key under the prefix and, when
// versioned, the latest delete markers (key → marker).
func (s *Source) list(ctx context.Context) (map[string]object, map[string]object, error) {
	objs := map[string]object{}
	var markers map[string]object
	if s.versioned {
		markers = map[string]object{}
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, WithVersions: s.versioned})
	var err error
	for oi := range ch { // drained to the end, as minio-go requires
		if err != nil {
			continue
		}
		if oi.Err != nil {
			err = oi.Err
			cancel()
			continue
		}
		if s.versioned && !oi.IsLatest {
			continue
		}
		o := object{ETag: oi.ETag, Size: oi.Size, Mod: oi.LastModified.UnixNano(), Version: oi.VersionID}
		if oi.IsDeleteMarker {
			markers[oi.Key] = o
			continue
		}
		objs[oi.Key] = o
	}
	if err != nil {
		return nil, nil, err
	}
	return objs, markers, nil
}

// diff returns the changes from old to cur, sorted by key.
func diff(old, cur, markers map[string]object) []change {
	var out []change
	for k, o := range cur {
		prev, ok := old[k]
		switch {
		case !ok:
			out = append(out, change{kind: "created", key: k, obj: o})
		case prev != o:
			out = append(out, change{kind: "updated", key: k, obj: o})
		}
	}
	for k, o := range old {
		if _, ok := cur[k]; !ok {
			c := change{kind: "deleted", key: k, obj: o}
			if m, ok := markers[k]; ok {
				c.at = m.Mod
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// message renders one change and acknowledges it into the snapshot.
func (s *Source) message(p *pass, c change) *connectors.Message {
	ev := s.event(c)
	return &connectors.Message{
		Event:    ev,
		Position: fmt.Sprintf("listing %d, %s", p.n, c.key),
		Ack:      func(ctx context.Context, err error) error { return s.ack(ctx, p, c, err) },
	}
}

func (s *Source) ack(ctx context.Context, p *pass, c change, err error) error {
	s.mu.Lock()
	if err != nil {
		p.failed = true
		p.finish()
		s.mu.Unlock()
		return nil
	}
	if c.kind == "deleted" {
		delete(s.applied, c.key)
	} else {
		s.applied[c.key] = c.obj
	}
	s.dirty++
	p.acked++
	complete := p.acked == len(p.changes)
	commit := complete || time.Since(s.lastCommit) > max(commitEvery, 10*s.commitCost)
	s.mu.Unlock()
	var cerr error
	if commit {
		cerr = s.commit(ctx)
	}
	if complete {
		s.mu.Lock()
		p.finish()
		s.mu.Unlock()
	}
	return cerr
}

// finish settles the pass (mu held).
func (p *pass) finish() {
	if !p.closed {
		p.closed = true
		close(p.finished)
	}
}

// commit writes the acknowledged state as the checkpoint.
func (s *Source) commit(ctx context.Context) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	start := time.Now()
	s.mu.Lock()
	n := s.dirty
	b, err := encodeSnapshot(s.bucket, s.prefix, s.applied)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := s.cp.Set(ctx, checkpointKey, b); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	s.mu.Lock()
	s.dirty -= n
	s.lastCommit, s.commitCost = time.Now(), time.Since(start)
	s.mu.Unlock()
	return nil
}

// objectData is the event's data.
type objectData struct {
	Bucket       string `json:"bucket"`
	Key          string `json:"key"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag"`
	LastModified string `json:"last_modified"`
	VersionID    string `json:"version_id,omitempty"`
}

// eventID is derived from the change and the object version it concerns.
func eventID(c change) string {
	return wrap.TerminatedHash(c.kind, c.key, c.obj.ETag, strconv.FormatInt(c.obj.Size, 10), strconv.FormatInt(c.obj.Mod, 10), c.obj.Version)
}

func (s *Source) event(c change) *pb.CloudEvent {
	mod := time.Unix(0, c.obj.Mod).UTC()
	data, _ := json.Marshal(objectData{Bucket: s.bucket, Key: c.key, Size: c.obj.Size, ETag: c.obj.ETag,
		LastModified: mod.Format(time.RFC3339Nano), VersionID: c.obj.Version})
	at := mod
	if c.kind == "deleted" {
		at = time.Now().UTC()
		if c.at != 0 {
			at = time.Unix(0, c.at).UTC()
		}
	}
	ev := &pb.CloudEvent{
		Id: eventID(c), Source: "s3://" + s.bucket, SpecVersion: cloudevent.SpecVersion,
		Type: "com.switchyard.s3.object." + c.kind,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			cloudevent.AttrDataContentType: {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			cloudevent.AttrSubject:         {Attr: &pb.CloudEventAttributeValue_CeString{CeString: wrap.SafeSubject(c.key)}},
		},
		Data: &pb.CloudEvent_TextData{TextData: string(data)},
	}
	if at.Year() >= 1 && at.Year() <= 9999 {
		ev.Attributes[cloudevent.AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(at)}}
	}
	return ev
}

var _ connectors.Source = (*Source)(nil)
