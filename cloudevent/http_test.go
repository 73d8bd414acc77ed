package cloudevent

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// req builds a POST request with raw header entries (keys used as given,
// not canonicalized, to exercise case-insensitivity) and a body.
func req(body string, kv ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	for i := 0; i < len(kv); i += 2 {
		r.Header[kv[i]] = append(r.Header[kv[i]], kv[i+1])
	}
	return r
}

// ceHeaders are the required attribute headers of a binary-mode request.
func ceHeaders(kv ...string) []string {
	return append([]string{"Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "/src", "Ce-Type", "t"}, kv...)
}

func TestReadRequestBinary(t *testing.T) {
	ct := func(ev *pb.CloudEvent, c string) *pb.CloudEvent {
		return withAttrs(ev, AttrDataContentType, strAttr(c))
	}
	cases := map[string]struct {
		r    *http.Request
		want *pb.CloudEvent
	}{
		"minimal, no body": {req("", ceHeaders()...), baseEvent()},
		"header names case-insensitive": {req("", "CE-SPECVERSION", "1.0", "ce-id", "1", "cE-sOuRcE", "/src", "Ce-TYPE", "t", "CE-MyExt", "v"),
			withAttrs(baseEvent(), "myext", strAttr("v"))},
		"optional attributes typed": {req("", ceHeaders("Ce-Time", "2018-04-05T18:31:00+01:00", "Ce-Dataschema", "https://x/s", "Ce-Subject", "sub", "Ce-Ext", "1", "Ce-Flag", "true")...),
			withAttrs(baseEvent(), AttrTime, tsAttr(t, "2018-04-05T17:31:00Z"), AttrDataSchema, uriAttr("https://x/s"), AttrSubject, strAttr("sub"),
				"ext", strAttr("1"), "flag", strAttr("true"))},
		"percent-decoded values (spec example)": {req("", ceHeaders("Ce-Subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")...),
			withAttrs(baseEvent(), AttrSubject, strAttr("Euro € 😀"))},
		"lower-case percent hex and needless encoding": {req("", ceHeaders("Ce-Subject", "%e2%82%ac%41")...),
			withAttrs(baseEvent(), AttrSubject, strAttr("€A"))},
		"quoted string (older senders)": {req("", ceHeaders("Ce-Subject", `"hello world \"q\""`)...),
			withAttrs(baseEvent(), AttrSubject, strAttr(`hello world "q"`))},
		"quoted then percent-decoded": {req("", ceHeaders("Ce-Subject", `"a%20b"`)...), withAttrs(baseEvent(), AttrSubject, strAttr("a b"))},
		"surrounding whitespace":      {req("", ceHeaders("Ce-Subject", " \tpadded\t ")...), withAttrs(baseEvent(), AttrSubject, strAttr("padded"))},
		"raw UTF-8 header value":      {req("", ceHeaders("Ce-Subject", "café")...), withAttrs(baseEvent(), AttrSubject, strAttr("café"))},
		"empty extension value":       {req("", ceHeaders("Ce-Ext", "")...), withAttrs(baseEvent(), "ext", strAttr(""))},
		"non-ce headers ignored":      {req("", ceHeaders("X-Ce-Id", "2", "Cex", "y", "Ce", "z", "Authorization", "secret")...), baseEvent()},
		"JSON body to text_data":      {req(`{"a": [1, 2]}`, ceHeaders("Content-Type", "application/json")...), withText(ct(baseEvent(), "application/json"), `{"a": [1, 2]}`)},
		"JSON body whitespace kept": {req("\n  {\"a\" : 1}\r\n", ceHeaders("Content-Type", "application/json; charset=utf-8")...),
			withText(ct(baseEvent(), "application/json; charset=utf-8"), "\n  {\"a\" : 1}\r\n")},
		"+json body":                            {req(`"s"`, ceHeaders("Content-Type", "application/vnd.x+json")...), withText(ct(baseEvent(), "application/vnd.x+json"), `"s"`)},
		"invalid JSON body kept raw":            {req(`{"a":`, ceHeaders("Content-Type", "application/json")...), withBinary(ct(baseEvent(), "application/json"), []byte(`{"a":`))},
		"text body":                             {req("héllo\n", ceHeaders("Content-Type", "text/plain; charset=utf-8")...), withText(ct(baseEvent(), "text/plain; charset=utf-8"), "héllo\n")},
		"non-UTF-8 text body":                   {req("h\xe9llo", ceHeaders("Content-Type", "text/plain; charset=iso-8859-1")...), withBinary(ct(baseEvent(), "text/plain; charset=iso-8859-1"), []byte("h\xe9llo"))},
		"binary body":                           {req("\x00\x01\xff", ceHeaders("Content-Type", "application/octet-stream")...), withBinary(ct(baseEvent(), "application/octet-stream"), []byte{0, 1, 0xff})},
		"text/json invalid JSON body is binary": {req("not json", ceHeaders("Content-Type", "text/json")...), withBinary(ct(baseEvent(), "text/json"), []byte("not json"))},
		"text/json body":                        {req(" [1]\n", ceHeaders("Content-Type", "text/json")...), withText(ct(baseEvent(), "text/json"), " [1]\n")},
		"xml body is binary":                    {req("<a/>", ceHeaders("Content-Type", "application/xml")...), withBinary(ct(baseEvent(), "application/xml"), []byte("<a/>"))},
		"no content type":                       {req(`{"a":1}`, ceHeaders()...), withBinary(baseEvent(), []byte(`{"a":1}`))},
		"empty content type":                    {req("x", ceHeaders("Content-Type", "")...), withBinary(baseEvent(), []byte("x"))},
		"content type without body":             {req("", ceHeaders("Content-Type", "application/json")...), ct(baseEvent(), "application/json")},
		"application/cloudeventsx is binary": {req("x", ceHeaders("Content-Type", "application/cloudevent+json")...),
			withBinary(ct(baseEvent(), "application/cloudevent+json"), []byte("x"))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			evs, mode, err := ReadRequest(tc.r, Limits{})
			require.NoError(t, err)
			require.Equal(t, ModeBinary, mode)
			require.Len(t, evs, 1)
			requireEqualEvent(t, tc.want, evs[0])
			checkRoundTrips(t, evs[0])
		})
	}
}

func TestReadRequestErrors(t *testing.T) {
	ok := obj()
	big := strings.Repeat("x", 100)
	cases := map[string]struct {
		r    *http.Request
		lim  Limits
		mode Mode
		want []wantErr
	}{
		// Binary mode.
		"not a CloudEvent":         {r: req("hello", "Content-Type", "text/plain"), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "specversion", -1}}},
		"no headers at all":        {r: req(""), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "specversion", -1}}},
		"missing id":               {r: req("", "Ce-Specversion", "1.0", "Ce-Source", "/s", "Ce-Type", "t"), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "id", -1}}},
		"missing source":           {r: req("", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Type", "t"), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "source", -1}}},
		"missing type":             {r: req("", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "/s"), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "type", -1}}},
		"missing beats bad header": {r: req("", "Ce-Bad_Name", "x", "Ce-Id", "1"), mode: ModeBinary, want: []wantErr{{ErrMissingAttribute, "specversion", -1}}},
		"bad specversion":          {r: req("", "Ce-Specversion", "0.3", "Ce-Id", "1", "Ce-Source", "/s", "Ce-Type", "t"), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "specversion", -1}}},
		"empty id header":          {r: req("", ceHeaders("Ce-Id", "")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "id", -1}}},
		"repeated header":          {r: req("", ceHeaders("Ce-Id", "2")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "id", -1}}},
		"ce-datacontenttype":       {r: req("", ceHeaders("Ce-Datacontenttype", "text/plain")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "datacontenttype", -1}}},
		"bad attribute name":       {r: req("", ceHeaders("Ce-My-Ext", "x")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "my-ext", -1}}},
		"empty attribute name":     {r: req("", ceHeaders("Ce-", "x")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "", -1}}},
		"reserved name data":       {r: req("", ceHeaders("Ce-Data", "x")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "data", -1}}},
		"bad percent-encoding":     {r: req("", ceHeaders("Ce-Subject", "100%")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "subject", -1}}},
		"bad percent hex":          {r: req("", ceHeaders("Ce-Subject", "%zz")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "subject", -1}}},
		"overlong UTF-8 (spec)":    {r: req("", ceHeaders("Ce-Subject", "%C0%A0")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "subject", -1}}},
		"invalid UTF-8 raw":        {r: req("", ceHeaders("Ce-Ext", "\xff")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "ext", -1}}},
		"encoded surrogate":        {r: req("", ceHeaders("Ce-Ext", "%ED%A0%80")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "ext", -1}}},
		"encoded newline":          {r: req("", ceHeaders("Ce-Ext", "a%0Ab")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "ext", -1}}},
		"unterminated quote":       {r: req("", ceHeaders("Ce-Subject", `"abc`)...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "subject", -1}}},
		"trailing backslash":       {r: req("", ceHeaders("Ce-Subject", `"abc\`)...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "subject", -1}}},
		"bad time":                 {r: req("", ceHeaders("Ce-Time", "yesterday")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "time", -1}}},
		"relative dataschema":      {r: req("", ceHeaders("Ce-Dataschema", "/s")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "dataschema", -1}}},
		"bad source":               {r: req("", "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "a%20b", "Ce-Type", "t"), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "source", -1}}},
		"bad content type":         {r: req("x", ceHeaders("Content-Type", "xyz")...), mode: ModeBinary, want: []wantErr{{ErrInvalidAttribute, "datacontenttype", -1}}},
		"binary body too large":    {r: req(big, ceHeaders()...), lim: Limits{MaxEventBytes: 99}, mode: ModeBinary, want: []wantErr{{ErrTooLarge, "", -1}}},
		"binary body too large (chunked)": {r: func() *http.Request {
			r := req(big, ceHeaders()...)
			r.ContentLength = -1
			return r
		}(), lim: Limits{MaxEventBytes: 99}, mode: ModeBinary, want: []wantErr{{ErrTooLarge, "", -1}}},
		"binary body read error": {r: func() *http.Request {
			r := req("", ceHeaders()...)
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader("abc"), errReader{}))
			r.ContentLength = -1
			return r
		}(), mode: ModeBinary, want: []wantErr{{ErrMalformed, "", -1}}},

		// Media types.
		"unsupported +xml":        {r: req("<e/>", "Content-Type", "application/cloudevents+xml"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},
		"unsupported +avro":       {r: req("x", "Content-Type", "application/cloudevents+avro"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},
		"unsupported batch +avro": {r: req("x", "Content-Type", "application/cloudevents-batch+avro"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},
		"bare cloudevents":        {r: req("x", "Content-Type", "application/cloudevents"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},
		"malformed cloudevents":   {r: req("x", "Content-Type", "application/cloudevents+json;;x"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},
		"latin1 charset":          {r: req(ok, "Content-Type", "application/cloudevents+json; charset=iso-8859-1"), want: []wantErr{{ErrUnsupportedMediaType, "", -1}}},

		// Structured mode.
		"structured malformed":  {r: req(`{"id":`, "Content-Type", MediaTypeStructuredJSON), mode: ModeStructured, want: []wantErr{{ErrMalformed, "", -1}}},
		"structured empty body": {r: req("", "Content-Type", MediaTypeStructuredJSON), mode: ModeStructured, want: []wantErr{{ErrMalformed, "", -1}}},
		"structured array":      {r: req("["+ok+"]", "Content-Type", MediaTypeStructuredJSON), mode: ModeStructured, want: []wantErr{{ErrMalformed, "", -1}}},
		"structured missing":    {r: req(`{"specversion":"1.0","id":"1","type":"t"}`, "Content-Type", MediaTypeStructuredJSON), mode: ModeStructured, want: []wantErr{{ErrMissingAttribute, "source", -1}}},
		"structured too large":  {r: req(ok, "Content-Type", MediaTypeStructuredJSON), lim: Limits{MaxEventBytes: int64(len(ok) - 1)}, mode: ModeStructured, want: []wantErr{{ErrTooLarge, "", -1}}},
		"structured too large (chunked)": {r: func() *http.Request {
			r := req(ok, "Content-Type", MediaTypeStructuredJSON)
			r.ContentLength = -1
			return r
		}(), lim: Limits{MaxEventBytes: int64(len(ok) - 1)}, mode: ModeStructured, want: []wantErr{{ErrTooLarge, "", -1}}},

		// Batched mode.
		"batch empty body":      {r: req(" ", "Content-Type", MediaTypeBatchJSON), mode: ModeBatch, want: []wantErr{{ErrMalformed, "", -1}}},
		"non-array batch":       {r: req(ok, "Content-Type", MediaTypeBatchJSON), mode: ModeBatch, want: []wantErr{{ErrMalformed, "", -1}}},
		"batch too large":       {r: req("["+ok+","+ok+"]", "Content-Type", MediaTypeBatchJSON), lim: Limits{MaxBatchBytes: int64(2*len(ok) + 2)}, mode: ModeBatch, want: []wantErr{{ErrTooLarge, "", -1}}},
		"batch event too large": {r: req("["+ok+","+obj(`"x":"`+big+`"`)+"]", "Content-Type", MediaTypeBatchJSON), lim: Limits{MaxEventBytes: int64(len(ok))}, mode: ModeBatch, want: []wantErr{{ErrTooLarge, "", 1}}},
		"batch with one bad event": {r: req("["+ok+","+ok+`,{"specversion":"1.0","id":"1","type":"t"}]`, "Content-Type", "Application/CloudEvents-Batch+JSON; charset=utf-8"),
			mode: ModeBatch, want: []wantErr{{ErrMissingAttribute, "source", 2}}},
		"batch with two bad events": {r: req(`[1,`+ok+`,{}]`, "Content-Type", MediaTypeBatchJSON),
			mode: ModeBatch, want: []wantErr{{ErrMalformed, "", 0}, {ErrMissingAttribute, "specversion", 2}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			evs, mode, err := ReadRequest(tc.r, tc.lim)
			require.Nil(t, evs)
			require.Equal(t, tc.mode, mode)
			es := ceErrors(t, err)
			require.Len(t, es, len(tc.want), "%v", err)
			for i, w := range tc.want {
				assert.Equal(t, w, wantErr{es[i].Kind, es[i].Attribute, es[i].Index}, "%v", es[i])
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadRequestValidModes(t *testing.T) {
	ok := obj(`"data":{"k":1}`)
	evs, mode, err := ReadRequest(req(ok, "Content-Type", "application/cloudevents+json; charset=UTF-8"), Limits{})
	require.NoError(t, err)
	require.Equal(t, ModeStructured, mode)
	require.Len(t, evs, 1)
	requireEqualEvent(t, withText(baseEvent(), `{"k":1}`), evs[0])

	// Structured mode ignores ce-* headers: the payload is authoritative.
	evs, _, err = ReadRequest(req(ok, "Content-Type", "APPLICATION/CLOUDEVENTS+JSON", "Ce-Id", "other", "Ce-Bad_Name", "x"), Limits{})
	require.NoError(t, err)
	require.Equal(t, "1", evs[0].GetId())

	evs, mode, err = ReadRequest(req("["+ok+","+obj()+"]", "Content-Type", MediaTypeBatchJSON), Limits{})
	require.NoError(t, err)
	require.Equal(t, ModeBatch, mode)
	require.Len(t, evs, 2)

	// An empty batch is valid (the JSON format allows it): no events, no
	// error, whatever the whitespace around it.
	for _, body := range []string{"[]", " [ \n ] "} {
		evs, mode, err = ReadRequest(req(body, "Content-Type", MediaTypeBatchJSON), Limits{})
		require.NoError(t, err, "%q", body)
		require.Equal(t, ModeBatch, mode)
		require.NotNil(t, evs)
		require.Empty(t, evs)
	}

	// A body exactly at the limit is accepted.
	evs, _, err = ReadRequest(req(ok, "Content-Type", MediaTypeStructuredJSON), Limits{MaxEventBytes: int64(len(ok))})
	require.NoError(t, err)
	require.Len(t, evs, 1)
}

// countingReader is an endless body that counts what is read from it.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestReadRequestDoesNotReadOversizedBody(t *testing.T) {
	for _, ct := range []string{"application/octet-stream", MediaTypeStructuredJSON, MediaTypeBatchJSON} {
		t.Run(ct, func(t *testing.T) {
			body := &countingReader{}
			r := req("", ceHeaders("Content-Type", ct)...)
			r.Body = io.NopCloser(body)
			r.ContentLength = -1
			const limit = 1000
			_, _, err := ReadRequest(r, Limits{MaxEventBytes: limit, MaxBatchBytes: limit})
			require.ErrorIs(t, err, ErrTooLarge)
			require.LessOrEqual(t, body.n, int64(2*limit+512), "read %d bytes", body.n)

			// A declared Content-Length over the limit is refused unread.
			body.n = 0
			r.ContentLength = limit + 1
			_, _, err = ReadRequest(r, Limits{MaxEventBytes: limit, MaxBatchBytes: limit})
			require.ErrorIs(t, err, ErrTooLarge)
			require.Zero(t, body.n)
		})
	}
}

func TestReadRequestMaxBytesReader(t *testing.T) {
	r := req(strings.Repeat("x", 100), ceHeaders()...)
	r.ContentLength = -1
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	_, _, err := ReadRequest(r, Limits{})
	requireErr(t, err, wantErr{ErrTooLarge, "", -1})
}

func TestLimitsWithDefaults(t *testing.T) {
	n := DefaultMaxBatchEvents
	require.Equal(t, Limits{MaxEventBytes: DefaultMaxEventBytes, MaxBatchBytes: DefaultMaxBatchBytes, MaxBatchEvents: n}, Limits{}.WithDefaults())
	require.Equal(t, Limits{MaxEventBytes: 5, MaxBatchBytes: DefaultMaxBatchBytes, MaxBatchEvents: n}, Limits{MaxEventBytes: 5, MaxBatchBytes: -1}.WithDefaults())
	require.Equal(t, Limits{MaxEventBytes: DefaultMaxEventBytes, MaxBatchBytes: 7, MaxBatchEvents: 3}, Limits{MaxBatchBytes: 7, MaxBatchEvents: 3}.WithDefaults())
	require.EqualValues(t, 1<<20, DefaultMaxEventBytes)
	require.EqualValues(t, 16<<20, DefaultMaxBatchBytes)
	require.EqualValues(t, 1000, DefaultMaxBatchEvents)
}

// trickleReader returns a few bytes, then reports that the peer went
// away: a client that declared a large body and sent almost none of it.
type trickleReader struct{ data []byte }

func (r *trickleReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.data[:1])
	r.data = r.data[n:]
	return n, nil
}

// TestReadRequestAllocatesAsTheBodyArrives checks review finding #5: a
// request declaring a 16 MiB body that sends a few bytes costs a buffer of
// a few hundred bytes, not 16 MiB taken from its Content-Length.
func TestReadRequestAllocatesAsTheBodyArrives(t *testing.T) {
	for _, ct := range []string{"application/octet-stream", MediaTypeStructuredJSON, MediaTypeBatchJSON} {
		t.Run(ct, func(t *testing.T) {
			const declared = 16 << 20
			lim := Limits{MaxEventBytes: declared, MaxBatchBytes: declared}
			var before, after runtime.MemStats
			var err error
			runtime.ReadMemStats(&before)
			for range 10 {
				r := req("", ceHeaders("Content-Type", ct)...)
				r.Body = io.NopCloser(&trickleReader{data: []byte(`[{"specversion":`)})
				r.ContentLength = declared
				_, _, err = ReadRequest(r, lim)
			}
			runtime.ReadMemStats(&after)
			requireErr(t, err, wantErr{ErrMalformed, "", -1})
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20),
				"ten requests declaring %d bytes allocated %d bytes", declared, after.TotalAlloc-before.TotalAlloc)
		})
	}
}

// TestReadRequestGrowsToLargeBodies reads bodies of many sizes, declared
// and chunked, through the growing buffer.
func TestReadRequestGrowsToLargeBodies(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 4095, 4096, 4097, 100_000, 3 << 20} {
		for _, chunked := range []bool{false, true} {
			data := strings.Repeat("d", size)
			r := req(data, ceHeaders("Content-Type", "application/octet-stream")...)
			if chunked {
				r.ContentLength = -1
			}
			evs, _, err := ReadRequest(r, Limits{MaxEventBytes: 4 << 20})
			require.NoError(t, err, "size %d", size)
			require.Equal(t, data, string(Data(evs[0])), "size %d chunked %v", size, chunked)
		}
	}
}

// TestBatchCountEnforcedWhileDecoding checks review finding #15: a batch of
// more than MaxBatchEvents events is refused as soon as the decoder reaches
// the first event past the limit, so what follows it (here, malformed
// JSON) is never looked at.
func TestBatchCountEnforcedWhileDecoding(t *testing.T) {
	ok := obj()
	three := "[" + ok + "," + ok + "," + ok
	evs, _, err := ReadRequest(req(three+"]", "Content-Type", MediaTypeBatchJSON), Limits{MaxBatchEvents: 3})
	require.NoError(t, err)
	require.Len(t, evs, 3)

	_, _, err = ReadRequest(req(three+`,{"never":`, "Content-Type", MediaTypeBatchJSON), Limits{MaxBatchEvents: 3})
	requireErr(t, err, wantErr{ErrTooLarge, "", -1})
	require.ErrorContains(t, err, "a batch holds at most 3 events")

	// The default bound applies without Limits.MaxBatchEvents.
	var b strings.Builder
	b.WriteString("[")
	for i := range DefaultMaxBatchEvents + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(ok)
	}
	b.WriteString("]")
	_, _, err = ReadRequest(req(b.String(), "Content-Type", MediaTypeBatchJSON), Limits{})
	requireErr(t, err, wantErr{ErrTooLarge, "", -1})

	// DecodeBatch itself has no count bound.
	evs, err = DecodeBatch([]byte(b.String()), 0)
	require.NoError(t, err)
	require.Len(t, evs, DefaultMaxBatchEvents+1)
}

func TestModeString(t *testing.T) {
	require.Equal(t, "binary", ModeBinary.String())
	require.Equal(t, "structured", ModeStructured.String())
	require.Equal(t, "batch", ModeBatch.String())
	require.Equal(t, "unknown", ModeUnknown.String())
	require.Equal(t, "unknown", Mode(42).String())
}

func TestWriteBinary(t *testing.T) {
	ev := withText(withAttrs(baseEvent(),
		AttrDataContentType, strAttr("application/json"),
		AttrTime, tsAttr(t, "2018-04-05T17:31:00.25Z"),
		AttrSubject, strAttr(`Euro € 😀 "q" 100%`),
		AttrDataSchema, uriAttr("https://x/s%20p"),
		"b", boolAttr(true), "n", intAttr(-5), "by", bytesAttr([]byte("Ma")), "u", uriRefAttr("#f"),
	), `{"k":"v"}`)
	h := http.Header{"Ce-Stale": {"x"}, "CE-OLD": {"y"}, "Content-Type": {"text/old"}, "Authorization": {"keep"}}
	body := WriteBinary(ev, h)
	require.Equal(t, `{"k":"v"}`, string(body))
	require.Equal(t, http.Header{
		"Authorization":  {"keep"},
		"Content-Type":   {"application/json"},
		"Ce-Specversion": {"1.0"},
		"Ce-Id":          {"1"},
		"Ce-Source":      {"/src"},
		"Ce-Type":        {"t"},
		"Ce-Time":        {"2018-04-05T17:31:00.25Z"},
		"Ce-Subject":     {"Euro%20%E2%82%AC%20%F0%9F%98%80%20%22q%22%20100%25"},
		"Ce-Dataschema":  {"https://x/s%2520p"},
		"Ce-B":           {"true"},
		"Ce-N":           {"-5"},
		"Ce-By":          {"TWE="},
		"Ce-U":           {"#f"},
	}, h)
	for k, vs := range h {
		for _, v := range vs {
			for i := 0; i < len(v); i++ {
				require.Truef(t, v[i] > 0x20 && v[i] < 0x7f && v[i] != '"', "header %s has byte %q", k, v[i])
			}
		}
	}

	// Without datacontenttype: application/json for text data that is
	// JSON (the JSON format implies it; JSON text is JSON from anyone);
	// nothing for text that is not JSON (text published over gRPC without a
	// content type) nor for binary data: no label rather than a wrong one.
	for text, want := range map[string][]string{
		"1": {"application/json"}, `{"a" : [1, "x"]}`: {"application/json"}, `"s"`: {"application/json"},
		"hello world": nil, "1 2": nil, " 1": nil, "": nil,
	} {
		h = http.Header{}
		WriteBinary(withText(baseEvent(), text), h)
		require.Equal(t, want, h["Content-Type"], "text data %q", text)
	}
	h = http.Header{"Content-Type": {"x/y"}}
	require.Equal(t, []byte{9}, WriteBinary(withBinary(baseEvent(), []byte{9}), h))
	require.NotContains(t, h, "Content-Type")
	h = http.Header{}
	require.Nil(t, WriteBinary(baseEvent(), h))
	require.NotContains(t, h, "Content-Type")

	// Unrepresentable attributes are skipped; control characters cannot
	// inject headers.
	h = http.Header{}
	WriteBinary(withAttrs(baseEvent(), "Bad Name", strAttr("x"), "id", strAttr("dup"), "nl", strAttr("a\r\nX-Injected: 1")), h)
	require.NotContains(t, h, "X-Injected")
	require.Equal(t, []string{"1"}, h["Ce-Id"])
	require.Equal(t, []string{"a%0D%0AX-Injected:%201"}, h["Ce-Nl"])
	require.Len(t, h, 5)
}

func TestBinaryRoundTrip(t *testing.T) {
	events := map[string]*pb.CloudEvent{
		"minimal": baseEvent(),
		"all core, JSON data": withText(withAttrs(minimalEvent("id with spaces & \"quotes\" 100%"),
			AttrDataContentType, strAttr("application/json; charset=utf-8"),
			AttrDataSchema, uriAttr("https://example.com/schema?v=1"),
			AttrSubject, strAttr("é😀/subject"),
			AttrTime, tsAttr(t, "2020-02-29T23:59:59.123456789Z")), `{"nested":{"a":[1,2,{"b":null}]},"s":"x\"y"}`),
		"string extensions": withAttrs(baseEvent(), "traceparent", strAttr("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
			"empty", strAttr(""), "unicode", strAttr("ünïcødé ✓"), "percent", strAttr("%41%"), "quote", strAttr(`"`)),
		"text data": withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain")), "line 1\nline 2\n"),
		"binary data": withBinary(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/octet-stream")),
			[]byte{0, 1, 2, 0xfe, 0xff, '\n'}),
		"binary data, no content type": withBinary(baseEvent(), bytes.Repeat([]byte{0xAA}, 4096)),
		"JSON scalar data":             withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/json")), `"just a string"`),
		"JSON data with whitespace":    withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/json")), "  {\"a\" : 1}\r\n"),
	}
	for name, ev := range events {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, Validate(ev))
			h := http.Header{}
			body := WriteBinary(ev, h)
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header = h
			evs, mode, err := ReadRequest(r, Limits{})
			require.NoError(t, err)
			require.Equal(t, ModeBinary, mode)
			require.Len(t, evs, 1)
			requireEqualEvent(t, ev, evs[0])
			require.Equal(t, Data(ev), Data(evs[0]), "data must be byte-exact")
		})
	}
}

// TestHTTPServerRoundTrip sends events over a real connection, so that
// net/http's header canonicalization and value trimming are in play.
func TestHTTPServerRoundTrip(t *testing.T) {
	type result struct {
		evs  []*pb.CloudEvent
		mode Mode
		err  error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, mode, err := ReadRequest(r, Limits{MaxEventBytes: 64 << 10})
		results <- result{evs, mode, err}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	post := func(h http.Header, body []byte, chunked bool) result {
		t.Helper()
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: chunked encoding
		}
		r, err := http.NewRequest(http.MethodPost, srv.URL, rd)
		require.NoError(t, err)
		for k, v := range h {
			r.Header[k] = v
		}
		resp, err := srv.Client().Do(r)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return <-results
	}

	ev := withText(withAttrs(minimalEvent("über id"), AttrDataContentType, strAttr("application/json"),
		AttrSubject, strAttr(" leading and trailing spaces "), "ext", strAttr("a\"b")), `{"a":1}`)
	h := http.Header{}
	body := WriteBinary(ev, h)
	res := post(h, body, false)
	require.NoError(t, res.err)
	require.Equal(t, ModeBinary, res.mode)
	requireEqualEvent(t, ev, res.evs[0])

	enc, err := EncodeStructured(ev)
	require.NoError(t, err)
	res = post(http.Header{"Content-Type": {MediaTypeStructuredJSON}}, enc, true)
	require.NoError(t, res.err)
	require.Equal(t, ModeStructured, res.mode)
	requireEqualEvent(t, ev, res.evs[0])

	batch, err := EncodeBatch([]*pb.CloudEvent{ev, baseEvent()})
	require.NoError(t, err)
	res = post(http.Header{"Content-Type": {MediaTypeBatchJSON}}, batch, false)
	require.NoError(t, res.err)
	require.Len(t, res.evs, 2)
	requireEqualEvent(t, ev, res.evs[0])

	res = post(h, bytes.Repeat([]byte("x"), 65<<10), true)
	require.ErrorIs(t, res.err, ErrTooLarge)
}

func TestHeaderValueCoding(t *testing.T) {
	require.Equal(t, "Euro%20%E2%82%AC%20%F0%9F%98%80", encodeHeaderValue("Euro € 😀"))
	require.Equal(t, "plain-value_1.2~!#$&'()*+,/:;=?@[]", encodeHeaderValue("plain-value_1.2~!#$&'()*+,/:;=?@[]"))
	require.Equal(t, "%22%25%20%7F%00%09", encodeHeaderValue("\"% \x7f\x00\t"))
	for _, s := range []string{"", "a", "Euro € 😀", "\"%\x00\t\r\n ", "%", "%%41", `\"`, "ünï\u2028"} {
		got, msg := decodeHeaderValue(encodeHeaderValue(s))
		require.Empty(t, msg, "%q", s)
		require.Equal(t, s, got)
	}
	bad := []string{"%", "%4", "%G1", "%C0%A0", "%FF", `"open`, `"x\`, "\xff", "%ED%A0%80"}
	for _, s := range bad {
		_, msg := decodeHeaderValue(s)
		require.NotEmpty(t, msg, "%q", s)
	}
	got, msg := decodeHeaderValue(`a"b c"d"\"e"`)
	require.Empty(t, msg)
	require.Equal(t, `ab cd"e`, got)
}

func TestHeaderKey(t *testing.T) {
	for _, name := range []string{"id", "time", "subject", "dataschema", "traceparent", "x", "1abc", "specversion"} {
		require.Equal(t, http.CanonicalHeaderKey("ce-"+name), headerKey(name), name)
	}
}

func TestReadRequestDeterministicErrors(t *testing.T) {
	// Several bad headers: the reported one must not depend on map order.
	for i := 0; i < 30; i++ {
		r := req("", ceHeaders("Ce-Zz", "%", "Ce-Bad_Name", "x", "Ce-Aa", "%zz", "Ce-Time", "x")...)
		_, _, err := ReadRequest(r, Limits{})
		requireErr(t, err, wantErr{ErrInvalidAttribute, "aa", -1})
	}
}

func TestReadRequestResultMarshals(t *testing.T) {
	r := req("\x00binary", ceHeaders("Ce-Ext", "%F0%9F%98%80", "Content-Type", "text/plain")...)
	evs, _, err := ReadRequest(r, Limits{})
	require.NoError(t, err)
	b, err := proto.Marshal(evs[0])
	require.NoError(t, err)
	var back pb.CloudEvent
	require.NoError(t, proto.Unmarshal(b, &back))
	requireEqualEvent(t, evs[0], &back)
	require.Equal(t, "\x00binary", evs[0].GetTextData())
	require.Equal(t, strconv.Quote("😀"), strconv.Quote(back.Attributes["ext"].GetCeString()))
}

func TestReadRequestSameAttributeTwoSpellings(t *testing.T) {
	for _, extra := range [][]string{{"ce-id", "2"}, {"CE-EXT", "b", "ce-ext", "a"}} {
		r := req("", ceHeaders(extra...)...)
		_, _, err := ReadRequest(r, Limits{})
		e := requireErr(t, err, wantErr{ErrInvalidAttribute, strings.ToLower(extra[0][3:]), -1})
		require.Contains(t, e.Error(), "repeated")
	}
}
