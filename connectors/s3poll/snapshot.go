package s3poll

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// object is what the source remembers of one key.
type object struct {
	ETag    string
	Size    int64
	Mod     int64 // last modification, Unix nanoseconds
	Version string
}

// snapshotVersion is the checkpoint format version.
const snapshotVersion = 1

// The checkpoint is the listing every event of which is durable:
// {"v":1,"bucket":...,"prefix":...,"objects":[[key, etag, size, mod, version], ...]}
// with rows sorted by key, gzip-compressed (keys of a bucket share long
// prefixes, so it compresses well).

// row is one object of the checkpoint.
type row struct {
	Key     string
	ETag    string
	Size    int64
	Mod     int64
	Version string
}

func (r row) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{r.Key, r.ETag, r.Size, r.Mod, r.Version})
}

// encodeSnapshot renders objects as a checkpoint value.
func encodeSnapshot(bucket, prefix string, objects map[string]object) ([]byte, error) {
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(zw)
	// Written by hand around the rows to avoid holding a second copy.
	head, _ := json.Marshal(struct {
		V      int    `json:"v"`
		Bucket string `json:"bucket"`
		Prefix string `json:"prefix"`
	}{snapshotVersion, bucket, prefix})
	if _, err := zw.Write(append(head[:len(head)-1], `,"objects":[`...)); err != nil {
		return nil, err
	}
	for i, k := range keys {
		if i > 0 {
			if _, err := zw.Write([]byte{','}); err != nil {
				return nil, err
			}
		}
		o := objects[k]
		if err := enc.Encode(row{k, o.ETag, o.Size, o.Mod, o.Version}); err != nil {
			return nil, err
		}
	}
	if _, err := zw.Write([]byte("]}")); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSnapshot parses a checkpoint value.
func decodeSnapshot(b []byte) (bucket, prefix string, objects map[string]object, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return "", "", nil, fmt.Errorf("checkpoint is not gzip: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return "", "", nil, fmt.Errorf("checkpoint: %w", err)
	}
	var f struct {
		V       int    `json:"v"`
		Bucket  string `json:"bucket"`
		Prefix  string `json:"prefix"`
		Objects []row  `json:"objects"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return "", "", nil, fmt.Errorf("checkpoint: %w", err)
	}
	if f.V != snapshotVersion {
		return "", "", nil, fmt.Errorf("checkpoint format %d, want %d", f.V, snapshotVersion)
	}
	objects = make(map[string]object, len(f.Objects))
	for _, r := range f.Objects {
		objects[r.Key] = object{ETag: r.ETag, Size: r.Size, Mod: r.Mod, Version: r.Version}
	}
	return f.Bucket, f.Prefix, objects, nil
}

func (r *row) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 5 {
		return fmt.Errorf("object row of %d values, want 5", len(a))
	}
	for i, dst := range []any{&r.Key, &r.ETag, &r.Size, &r.Mod, &r.Version} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return err
		}
	}
	return nil
}
