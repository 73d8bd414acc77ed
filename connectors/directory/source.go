package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/switchyard-io/switchyard/connectors"
)

// checkpointKey is where the snapshot lives in the source's checkpoints.
const checkpointKey = "snapshot"

// commitEvery is how often the watch loop looks whether acknowledged
// changes wait to be written to the checkpoint; it also writes right after
// acknowledgements, unless the last write was less than ten times its own
// duration ago (writing grows with the directory). A crash redelivers what
// was acknowledged since the last write, with the same ids.
const commitEvery = 200 * time.Millisecond

// Source is the directory source. A watch loop turns file notifications
// into debounced looks at the paths concerned; each look compares the disk
// with what was already reported and queues the differences for Read.
type Source struct {
	name           string
	log            *slog.Logger
	cp             connectors.Checkpoints
	root           string // absolute, cleaned
	source         string
	recursive      bool
	include        []pattern
	exclude        []pattern
	debounce       time.Duration
	checksum       bool
	includeContent bool
	maxContent     int64
	emitExisting   bool
	rescan         time.Duration

	commitMu sync.Mutex // serializes checkpoint writes

	mu         sync.Mutex
	loaded     bool                 // applied was read from the checkpoint
	baseline   bool                 // a checkpoint exists (or emit_existing is on)
	applied    map[string]fileState // reported and acknowledged
	seen       map[string]fileState // reported (acknowledged or in flight)
	under      map[string]int       // directory → number of seen files under it
	queue      []change             // found, not yet read
	gen        uint64               // bumped whenever seen is reset
	inflight   int                  // read, not yet acknowledged
	dirty      int                  // acknowledged changes not in the checkpoint
	lastCommit time.Time
	commitCost time.Duration

	wake    chan struct{} // capacity 1: the queue grew
	commitC chan struct{} // capacity 1: changes were acknowledged

	// Per connection.
	cancel  context.CancelFunc
	done    chan struct{}
	fatal   chan error
	rescanC chan struct{} // capacity 1: rescan everything now
}

// change is one difference found on disk.
type change struct {
	kind    string // created, modified, removed
	rel     string // slash-separated path relative to root
	st      fileState
	sum     string // hex SHA-256 with checksum
	content []byte // with include_content, when small enough
	hasData bool   // content was read
	at      time.Time
}

// New builds a directory source from its fields.
func New(env connectors.Env, cfg connectors.Config) (connectors.Source, error) {
	s := &Source{
		name: env.Name, log: env.Logger, cp: env.Checkpoints,
		recursive: cfg.Bool(fieldRecursive), debounce: cfg.Duration(fieldDebounce),
		checksum: cfg.Bool(fieldChecksum), includeContent: cfg.Bool(fieldIncludeContent),
		maxContent: int64(cfg.Int(fieldMaxContentBytes)), emitExisting: cfg.Bool(fieldEmitExisting),
		rescan: cfg.Duration(fieldRescanInterval), source: cfg.String(fieldSource),
		wake: make(chan struct{}, 1), commitC: make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cp == nil {
		return nil, errors.New("the directory source needs checkpoint storage")
	}
	var errs []error
	if p := cfg.String(fieldPath); p == "" {
		errs = append(errs, fmt.Errorf("fields.%s: must not be empty", fieldPath))
	} else if abs, err := filepath.Abs(p); err != nil {
		errs = append(errs, fmt.Errorf("fields.%s: %q: %w", fieldPath, p, err))
	} else {
		s.root = filepath.Clean(abs)
	}
	var err error
	if s.include, err = compilePatterns(fieldInclude, cfg.StringList(fieldInclude)); err != nil {
		errs = append(errs, err)
	}
	if s.exclude, err = compilePatterns(fieldExclude, cfg.StringList(fieldExclude)); err != nil {
		errs = append(errs, err)
	}
	if s.debounce < 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %s: must not be negative", fieldDebounce, s.debounce))
	}
	if s.rescan < 0 {
		errs = append(errs, fmt.Errorf("fields.%s: %s: must not be negative (0 turns rescans off)", fieldRescanInterval, s.rescan))
	}
	if s.maxContent <= 0 || s.maxContent > maxContentLimit {
		errs = append(errs, fmt.Errorf("fields.%s: %d: must be between 1 and %d", fieldMaxContentBytes, s.maxContent, maxContentLimit))
	}
	if s.source == "" && s.root != "" {
		s.source = (&url.URL{Scheme: "file", Path: filepath.ToSlash(s.root)}).String()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Connect implements connectors.Source: it checks the directory, loads the
// checkpoint (once per process), starts watching and queues a full scan.
func (s *Source) Connect(ctx context.Context) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", s.root)
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	if err := w.Add(s.root); err != nil {
		_ = w.Close()
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	s.mu.Lock()
	s.gen++
	s.queue, s.inflight = nil, 0
	s.resetSeen()
	s.mu.Unlock()
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	s.fatal, s.rescanC = make(chan error, 1), make(chan struct{}, 1)
	go s.loop(lctx, w, s.done)
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
	s.applied, s.baseline = map[string]fileState{}, s.emitExisting
	if b != nil {
		root, files, err := decodeSnapshot(b)
		switch {
		case err != nil:
			return fmt.Errorf("read checkpoint: %w", err)
		case root != s.root:
			s.log.Warn("the checkpoint is of another directory; starting afresh", "checkpoint_root", root)
		default:
			s.applied, s.baseline = files, true
		}
	}
	s.loaded, s.lastCommit = true, time.Now()
	return nil
}

// Close implements connectors.Source: it stops watching and writes what was
// acknowledged since the last checkpoint.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
		s.cancel = nil
	}
	s.mu.Lock()
	s.queue = nil
	dirty := s.dirty > 0
	s.mu.Unlock()
	if dirty {
		return s.commit(ctx)
	}
	return nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context) (*connectors.Message, error) {
	if s.fatal == nil {
		return nil, fmt.Errorf("%w: not connected", connectors.ErrNotConnected)
	}
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			c := s.queue[0]
			s.queue[0] = change{}
			s.queue = s.queue[1:]
			s.inflight++
			gen := s.gen
			s.mu.Unlock()
			return s.message(c, gen), nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case err := <-s.fatal:
			s.fatal <- err // every later Read fails too, until the reconnect
			return nil, fmt.Errorf("%w: %w", connectors.ErrNotConnected, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *Source) message(c change, gen uint64) *connectors.Message {
	return &connectors.Message{
		Event:    s.event(c),
		Position: c.rel,
		Ack:      func(ctx context.Context, err error) error { return s.ack(ctx, c, gen, err) },
	}
}

func (s *Source) ack(_ context.Context, c change, gen uint64, err error) error {
	s.mu.Lock()
	s.inflight--
	if err != nil {
		// Forget what was reported but not stored, and look again: the
		// refused change (and whatever followed it) is found anew.
		if gen == s.gen {
			s.gen++
			s.queue = nil
			s.resetSeen()
			select {
			case s.rescanC <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		return nil
	}
	if c.kind == "removed" {
		delete(s.applied, c.rel)
	} else {
		s.applied[c.rel] = c.st
	}
	s.dirty++
	s.mu.Unlock()
	select { // the watch loop writes the checkpoint (commitIfDue)
	case s.commitC <- struct{}{}:
	default:
	}
	return nil
}

// commitIfDue writes the checkpoint if changes were acknowledged since the
// last write and that write is old enough: checkpoints take at most a tenth
// of the time.
func (s *Source) commitIfDue(ctx context.Context) error {
	s.mu.Lock()
	due := s.dirty > 0 && time.Since(s.lastCommit) >= 10*s.commitCost
	s.mu.Unlock()
	if !due {
		return nil
	}
	return s.commit(ctx)
}

// commit writes the acknowledged state as the checkpoint.
func (s *Source) commit(ctx context.Context) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	start := time.Now()
	s.mu.Lock()
	n := s.dirty
	b, err := encodeSnapshot(s.root, s.applied)
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

var _ connectors.Source = (*Source)(nil)
