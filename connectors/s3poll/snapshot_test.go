package s3poll

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"maps"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	objs := map[string]object{}
	for i := range 20000 {
		objs[fmt.Sprintf("logs/2025/03/04/host-%03d/part-%06d.json.gz", i%100, i)] = object{ETag: fmt.Sprintf("%032x", i*7919), Size: int64(i * 31), Mod: 1741064767000000000 + int64(i)*1e6}
	}
	objs["weird \x00 key \xff"] = object{ETag: "e", Version: "v1"}
	b, err := encodeSnapshot("bkt", "logs/", objs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("20001 objects: checkpoint of %d bytes (%.1f bytes/object)", len(b), float64(len(b))/float64(len(objs)))
	bucket, prefix, got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if bucket != "bkt" || prefix != "logs/" {
		t.Fatalf("bucket %q prefix %q", bucket, prefix)
	}
	// JSON keeps invalid UTF-8 only as U+FFFD: such a key reads back changed,
	// which at worst makes it "deleted" and "created" once.
	delete(objs, "weird \x00 key \xff")
	delete(got, "weird \x00 key \ufffd")
	if !maps.Equal(objs, got) {
		t.Fatal("the snapshot did not round-trip")
	}
}

func TestSnapshotErrors(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	for name, b := range map[string][]byte{
		"not gzip":    []byte("{}"),
		"not json":    gz("x"),
		"old version": gz(`{"v":0,"objects":[]}`),
		"short row":   gz(`{"v":1,"objects":[["k","e",1,2]]}`),
		"bad size":    gz(`{"v":1,"objects":[["k","e","big",2,""]]}`),
	} {
		if _, _, _, err := decodeSnapshot(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := encodeSnapshot("bkt", "p/", map[string]object{"a": {ETag: "e", Size: 1, Mod: 2, Version: "v"}})
	f.Add(good)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		bucket, prefix, objs, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		// Whatever decodes encodes and decodes to the same thing.
		again, err := encodeSnapshot(bucket, prefix, objs)
		if err != nil {
			t.Fatal(err)
		}
		b2, p2, o2, err := decodeSnapshot(again)
		if err != nil || b2 != bucket || p2 != prefix || !maps.Equal(o2, objs) {
			t.Fatalf("re-encoded snapshot differs: %v", err)
		}
	})
}
