package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// loop watches until ctx ends: notifications mark paths dirty, and a path
// quiet for the debounce delay is reconciled. "" is the whole directory.
func (s *Source) loop(ctx context.Context, w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	defer w.Close()
	dirty := map[string]time.Time{"": time.Now()} // the initial scan
	timer := time.NewTimer(0)
	defer timer.Stop()
	armed := time.Now() // when the timer fires; zero when stopped
	// arm makes the timer fire by d. Looks are batched: the timer never
	// fires sooner than a quarter of the debounce after the previous time.
	arm := func(d time.Time) {
		if armed.IsZero() || d.Before(armed) {
			armed = d
			timer.Reset(max(time.Until(d), 0))
		}
	}
	var rescan <-chan time.Time
	if s.rescan > 0 {
		t := time.NewTicker(s.rescan)
		defer t.Stop()
		rescan = t.C
	}
	commits := time.NewTicker(commitEvery)
	defer commits.Stop()
	fail := func(err error) {
		select {
		case s.fatal <- err:
		default:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				fail(errors.New("the file watcher stopped"))
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Name == s.root && ev.Op.Has(fsnotify.Remove|fsnotify.Rename) {
				fail(fmt.Errorf("watched directory %s was removed or renamed", s.root))
				return
			}
			rel, ok := s.relPath(ev.Name)
			if !ok {
				continue
			}
			d := time.Now().Add(s.debounce)
			dirty[rel] = d
			arm(d)
		case err, ok := <-w.Errors:
			if !ok {
				fail(errors.New("the file watcher stopped"))
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log.Warn("file notifications overflowed; rescanning the directory")
				dirty[""] = time.Now()
				arm(dirty[""])
				continue
			}
			fail(fmt.Errorf("watch %s: %w", s.root, err))
			return
		case <-rescan:
			dirty[""] = time.Now()
			arm(dirty[""])
		case <-s.rescanC:
			dirty[""] = time.Now()
			arm(dirty[""])
		case <-commits.C:
			if err := s.commitIfDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("write checkpoint", "err", err)
			}
		case <-s.commitC:
			if err := s.commitIfDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("write checkpoint", "err", err)
			}
		case <-timer.C:
			armed = time.Time{}
			now := time.Now()
			var due []string
			for p, d := range dirty {
				if !d.After(now) {
					due = append(due, p)
				}
			}
			if _, all := dirty[""]; all && !dirty[""].After(now) {
				due = []string{""}
				for p, d := range dirty {
					if !d.After(now) {
						delete(dirty, p)
					}
				}
			}
			sort.Strings(due)
			for _, p := range due {
				delete(dirty, p)
			}
			for _, p := range due {
				if ctx.Err() != nil {
					return
				}
				unstable, err := s.reconcile(ctx, w, p)
				if err != nil {
					fail(err)
					return
				}
				for _, u := range unstable { // still being written: look again later
					dirty[u] = time.Now().Add(max(s.debounce, 10*time.Millisecond))
				}
			}
			var first time.Time
			for _, d := range dirty {
				if first.IsZero() || d.Before(first) {
					first = d
				}
			}
			if !first.IsZero() {
				arm(maxTime(first, time.Now().Add(s.debounce/4)))
			}
		}
	}
}

// relPath turns an absolute path under root into the slash-separated
// relative path, if it is one the source looks at.
func (s *Source) relPath(abs string) (string, bool) {
	rel, err := filepath.Rel(s.root, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	rel = filepath.ToSlash(rel)
	if !s.recursive && strings.Contains(rel, "/") {
		return "", false
	}
	return rel, true
}

// wanted reports whether a file's relative path passes the patterns.
func (s *Source) wanted(rel string) bool {
	if len(s.include) > 0 && !anyMatch(s.include, rel) {
		return false
	}
	return !anyMatch(s.exclude, rel)
}

// walk returns the state of every wanted file at or under scope ("" for
// root), adding watches on the directories it enters when recursive.
func (s *Source) walk(w *fsnotify.Watcher, scope string) (map[string]fileState, error) {
	out := map[string]fileState{}
	start := filepath.Join(s.root, filepath.FromSlash(scope))
	if scope == "" {
		start = s.root + string(filepath.Separator) // follow a root that is a symbolic link
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // the scope is gone: everything under it is removed
			}
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil // vanished meanwhile, or unreadable: skip it
			}
			return err
		}
		rel := scope
		if p != start {
			var ok bool
			if rel, ok = s.relPath(p); !ok {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			if rel != "" && (!s.recursive || anyMatch(s.exclude, rel)) {
				return fs.SkipDir
			}
			if rel != "" {
				if err := w.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("watch %s: %w", p, err)
				}
			}
			return nil
		}
		if !s.wanted(rel) {
			return nil
		}
		fi, err := os.Stat(p) // follows symbolic links
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		out[rel] = fileState{Size: fi.Size(), Mod: fi.ModTime().UnixNano()}
		return nil
	})
	return out, err
}

// inScope reports whether rel is scope or under it.
func inScope(rel, scope string) bool {
	return scope == "" || rel == scope || strings.HasPrefix(rel, scope+"/")
}

// reconcile compares scope on disk with what was reported and queues the
// differences. It returns the paths that changed while being read.
func (s *Source) reconcile(ctx context.Context, w *fsnotify.Watcher, scope string) (unstable []string, err error) {
	cur, err := s.walk(w, scope)
	if err != nil {
		return nil, err
	}
	now := time.Now()

	s.mu.Lock()
	if !s.baseline && scope != "" { // the first full scan comes first
		s.mu.Unlock()
		return nil, nil
	}
	if !s.baseline { // first start without emit_existing: this is the baseline
		s.applied, s.baseline, s.dirty = cur, true, s.dirty+1
		s.resetSeen()
		s.mu.Unlock()
		if err := s.commit(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("write checkpoint", "err", err)
		}
		return nil, nil
	}
	gen := s.gen
	var candidates, removed []string
	for p, st := range cur {
		if prev, ok := s.seen[p]; !ok || prev != st {
			candidates = append(candidates, p)
		}
	}
	if _, ok := s.seen[scope]; ok && scope != "" {
		if _, ok := cur[scope]; !ok {
			removed = append(removed, scope)
		}
	}
	if scope == "" || s.under[scope] > 0 { // a directory: look at what was under it
		for p := range s.seen {
			if _, ok := cur[p]; !ok && p != scope && inScope(p, scope) {
				removed = append(removed, p)
			}
		}
	}
	s.mu.Unlock()
	if len(candidates) == 0 && len(removed) == 0 {
		return nil, nil
	}
	sort.Strings(candidates)
	sort.Strings(removed)

	// Read what the events need before deciding, outside the lock.
	found := make([]change, 0, len(candidates))
	for _, p := range candidates {
		c := change{rel: p, st: cur[p], at: time.Unix(0, cur[p].Mod)}
		if age := now.Sub(c.at); age >= 0 && age < s.debounce { // written just now: let it settle
			unstable = append(unstable, p)
			continue
		}
		if s.checksum || (s.includeContent && c.st.Size <= s.maxContent) {
			if ok := s.read(&c); !ok {
				unstable = append(unstable, p)
				continue
			}
		}
		found = append(found, c)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen { // reset meanwhile: a full rescan is on its way
		return unstable, nil
	}
	n := len(s.queue)
	for _, c := range found {
		prev, ok := s.seen[c.rel]
		switch {
		case !ok:
			c.kind = "created"
		case prev != c.st:
			c.kind = "modified"
		default:
			continue
		}
		s.setSeen(c.rel, c.st)
		s.queue = append(s.queue, c)
	}
	for _, p := range removed {
		prev, ok := s.seen[p]
		if !ok {
			continue
		}
		s.deleteSeen(p)
		s.queue = append(s.queue, change{kind: "removed", rel: p, st: prev, at: now})
	}
	if len(s.queue) > n {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return unstable, nil
}

// read fills the checksum and content of c; false means the file changed
// (or vanished) meanwhile.
func (s *Source) read(c *change) bool {
	p := filepath.Join(s.root, filepath.FromSlash(c.rel))
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	var buf bytes.Buffer
	var dst io.Writer = h
	keep := s.includeContent && c.st.Size <= s.maxContent
	if keep {
		buf.Grow(int(c.st.Size))
		dst = io.MultiWriter(h, &buf)
	}
	n, err := io.Copy(dst, io.LimitReader(f, c.st.Size+1))
	if err != nil || n != c.st.Size {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != c.st.Size || fi.ModTime().UnixNano() != c.st.Mod {
		return false
	}
	if s.checksum {
		c.sum = hex.EncodeToString(h.Sum(nil))
	}
	if keep {
		c.content, c.hasData = buf.Bytes(), true
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// setSeen records a reported file (mu held).
func (s *Source) setSeen(rel string, st fileState) {
	if _, ok := s.seen[rel]; !ok {
		forDirs(rel, func(d string) { s.under[d]++ })
	}
	s.seen[rel] = st
}

// deleteSeen forgets a reported file (mu held).
func (s *Source) deleteSeen(rel string) {
	if _, ok := s.seen[rel]; ok {
		forDirs(rel, func(d string) {
			if s.under[d]--; s.under[d] <= 0 {
				delete(s.under, d)
			}
		})
		delete(s.seen, rel)
	}
}

// resetSeen makes seen what is acknowledged (mu held).
func (s *Source) resetSeen() {
	s.seen = make(map[string]fileState, len(s.applied))
	s.under = map[string]int{}
	for p, st := range s.applied {
		s.setSeen(p, st)
	}
}

// forDirs calls f with every directory above rel ("a/b/c" → "a/b", "a").
func forDirs(rel string, f func(string)) {
	for i := len(rel) - 1; i > 0; i-- {
		if rel[i] == '/' {
			f(rel[:i])
		}
	}
}
