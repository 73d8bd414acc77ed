package directory

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// fileState is what identifies a version of a file.
type fileState struct {
	Size int64
	Mod  int64 // modification time, Unix nanoseconds
}

// snapshotVersion is the checkpoint format version.
const snapshotVersion = 1

// The checkpoint is the set of files reported and stored:
// {"v":1,"root":...,"files":[[path, size, mod], ...]}, sorted by path,
// gzip-compressed.

type row struct {
	Path string
	Size int64
	Mod  int64
}

// A path that is not valid UTF-8 (JSON strings would alter it) is stored as
// NUL + its base64; no path holds NUL.
func (r row) MarshalJSON() ([]byte, error) {
	p := r.Path
	if !utf8.ValidString(p) {
		p = "\x00" + base64.StdEncoding.EncodeToString([]byte(p))
	}
	return json.Marshal([]any{p, r.Size, r.Mod})
}

func (r *row) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 3 {
		return fmt.Errorf("file row of %d values, want 3", len(a))
	}
	for i, dst := range []any{&r.Path, &r.Size, &r.Mod} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return err
		}
	}
	if enc, ok := strings.CutPrefix(r.Path, "\x00"); ok {
		p, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return fmt.Errorf("file row: bad encoded path: %w", err)
		}
		r.Path = string(p)
	}
	return nil
}

type snapshotFile struct {
	V     int    `json:"v"`
	Root  string `json:"root"`
	Files []row  `json:"files"`
}

// encodeSnapshot renders files as a checkpoint value.
func encodeSnapshot(root string, files map[string]fileState) ([]byte, error) {
	f := snapshotFile{V: snapshotVersion, Root: root, Files: make([]row, 0, len(files))}
	for p, st := range files {
		f.Files = append(f.Files, row{p, st.Size, st.Mod})
	}
	sort.Slice(f.Files, func(i, j int) bool { return f.Files[i].Path < f.Files[j].Path })
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSnapshot parses a checkpoint value.
func decodeSnapshot(b []byte) (root string, files map[string]fileState, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return "", nil, fmt.Errorf("checkpoint is not gzip: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return "", nil, fmt.Errorf("checkpoint: %w", err)
	}
	var f snapshotFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return "", nil, fmt.Errorf("checkpoint: %w", err)
	}
	if f.V != snapshotVersion {
		return "", nil, fmt.Errorf("checkpoint format %d, want %d", f.V, snapshotVersion)
	}
	files = make(map[string]fileState, len(f.Files))
	for _, r := range f.Files {
		files[r.Path] = fileState{Size: r.Size, Mod: r.Mod}
	}
	return f.Root, files, nil
}
