package cloudevent

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestValidate(t *testing.T) {
	ts := func(sec int64, nanos int32) *pb.CloudEventAttributeValue {
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}}}
	}
	cases := map[string]struct {
		ev   *pb.CloudEvent
		want *wantErr // nil: valid
	}{
		"minimal":                {ev: baseEvent()},
		"nil event":              {ev: nil, want: &wantErr{ErrMalformed, "", -1}},
		"empty event":            {ev: &pb.CloudEvent{}, want: &wantErr{ErrMissingAttribute, "specversion", -1}},
		"missing specversion":    {ev: &pb.CloudEvent{Id: "1", Source: "/s", Type: "t"}, want: &wantErr{ErrMissingAttribute, "specversion", -1}},
		"missing id":             {ev: &pb.CloudEvent{SpecVersion: "1.0", Source: "/s", Type: "t"}, want: &wantErr{ErrMissingAttribute, "id", -1}},
		"missing source":         {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "1", Type: "t"}, want: &wantErr{ErrMissingAttribute, "source", -1}},
		"missing type":           {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "1", Source: "/s"}, want: &wantErr{ErrMissingAttribute, "type", -1}},
		"specversion 0.3":        {ev: &pb.CloudEvent{SpecVersion: "0.3", Id: "1", Source: "/s", Type: "t"}, want: &wantErr{ErrInvalidAttribute, "specversion", -1}},
		"id with newline":        {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "a\nb", Source: "/s", Type: "t"}, want: &wantErr{ErrInvalidAttribute, "id", -1}},
		"id invalid UTF-8":       {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "\xff", Source: "/s", Type: "t"}, want: &wantErr{ErrInvalidAttribute, "id", -1}},
		"type with DEL":          {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "1", Source: "/s", Type: "a\x7f"}, want: &wantErr{ErrInvalidAttribute, "type", -1}},
		"source not a URI-ref":   {ev: &pb.CloudEvent{SpecVersion: "1.0", Id: "1", Source: "a b", Type: "t"}, want: &wantErr{ErrInvalidAttribute, "source", -1}},
		"id attribute in map":    {ev: withAttrs(baseEvent(), "id", strAttr("2")), want: &wantErr{ErrInvalidAttribute, "id", -1}},
		"source in map":          {ev: withAttrs(baseEvent(), "source", strAttr("/x")), want: &wantErr{ErrInvalidAttribute, "source", -1}},
		"upper-case name":        {ev: withAttrs(baseEvent(), "Ext", strAttr("x")), want: &wantErr{ErrInvalidAttribute, "Ext", -1}},
		"empty name":             {ev: withAttrs(baseEvent(), "", strAttr("x")), want: &wantErr{ErrInvalidAttribute, "", -1}},
		"reserved name data":     {ev: withAttrs(baseEvent(), "data", strAttr("x")), want: &wantErr{ErrInvalidAttribute, "data", -1}},
		"data_base64 name":       {ev: withAttrs(baseEvent(), "data_base64", strAttr("x")), want: &wantErr{ErrInvalidAttribute, "data_base64", -1}},
		"nil value":              {ev: withAttrs(baseEvent(), "ext", (*pb.CloudEventAttributeValue)(nil)), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"no variant":             {ev: withAttrs(baseEvent(), "ext", &pb.CloudEventAttributeValue{}), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"long name is accepted":  {ev: withAttrs(baseEvent(), "abcdefghijklmnopqrstuvwxyz0123456789", strAttr("x"))},
		"datacontenttype as uri": {ev: withAttrs(baseEvent(), AttrDataContentType, uriAttr("text:plain")), want: &wantErr{ErrInvalidAttribute, AttrDataContentType, -1}},
		"datacontenttype bad":    {ev: withAttrs(baseEvent(), AttrDataContentType, strAttr("json")), want: &wantErr{ErrInvalidAttribute, AttrDataContentType, -1}},
		"datacontenttype ok":     {ev: withAttrs(baseEvent(), AttrDataContentType, strAttr(`Text/Plain ; charset="utf-8" ;format=flowed`))},
		"dataschema as string":   {ev: withAttrs(baseEvent(), AttrDataSchema, strAttr("https://x/s")), want: &wantErr{ErrInvalidAttribute, AttrDataSchema, -1}},
		"dataschema empty":       {ev: withAttrs(baseEvent(), AttrDataSchema, uriAttr("")), want: &wantErr{ErrInvalidAttribute, AttrDataSchema, -1}},
		"dataschema relative":    {ev: withAttrs(baseEvent(), AttrDataSchema, uriAttr("//x/s")), want: &wantErr{ErrInvalidAttribute, AttrDataSchema, -1}},
		"dataschema ok":          {ev: withAttrs(baseEvent(), AttrDataSchema, uriAttr("https://example.com:8443/schemas/v1.json?x=1"))},
		// CloudEvents 1.0: dataschema is an absolute URI, so a protobuf
		// type URL is accepted with its scheme and refused without.
		"dataschema type URL with scheme": {ev: withAttrs(baseEvent(), AttrDataSchema, uriAttr("https://type.googleapis.com/google.protobuf.Duration"))},
		"dataschema type URL without scheme": {ev: withAttrs(baseEvent(), AttrDataSchema, uriAttr("type.googleapis.com/google.protobuf.Duration")),
			want: &wantErr{ErrInvalidAttribute, AttrDataSchema, -1}},
		"subject empty":        {ev: withAttrs(baseEvent(), AttrSubject, strAttr("")), want: &wantErr{ErrInvalidAttribute, AttrSubject, -1}},
		"subject as integer":   {ev: withAttrs(baseEvent(), AttrSubject, intAttr(1)), want: &wantErr{ErrInvalidAttribute, AttrSubject, -1}},
		"subject C1 control":   {ev: withAttrs(baseEvent(), AttrSubject, strAttr("a\u0080")), want: &wantErr{ErrInvalidAttribute, AttrSubject, -1}},
		"time as string":       {ev: withAttrs(baseEvent(), AttrTime, strAttr("2018-04-05T17:31:00Z")), want: &wantErr{ErrInvalidAttribute, AttrTime, -1}},
		"time nil timestamp":   {ev: withAttrs(baseEvent(), AttrTime, &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{}}), want: &wantErr{ErrInvalidAttribute, AttrTime, -1}},
		"time year 10000":      {ev: withAttrs(baseEvent(), AttrTime, ts(253402300800, 0)), want: &wantErr{ErrInvalidAttribute, AttrTime, -1}},
		"time bad nanos":       {ev: withAttrs(baseEvent(), AttrTime, ts(0, 1e9)), want: &wantErr{ErrInvalidAttribute, AttrTime, -1}},
		"time ok":              {ev: withAttrs(baseEvent(), AttrTime, ts(0, 999999999))},
		"ext uri relative":     {ev: withAttrs(baseEvent(), "ext", uriAttr("/rel")), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"ext uri-ref bad":      {ev: withAttrs(baseEvent(), "ext", uriRefAttr("a b")), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"ext uri-ref empty ok": {ev: withAttrs(baseEvent(), "ext", uriRefAttr(""))},
		"ext timestamp range":  {ev: withAttrs(baseEvent(), "ext", ts(-62135596801, 0)), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"ext string nonchar":   {ev: withAttrs(baseEvent(), "ext", strAttr("\U0010FFFF")), want: &wantErr{ErrInvalidAttribute, "ext", -1}},
		"ext string empty ok":  {ev: withAttrs(baseEvent(), "ext", strAttr(""))},
		"all types ok": {ev: withAttrs(baseEvent(), "b", boolAttr(false), "i", intAttr(-1), "s", strAttr("é😀 ok"), "by", bytesAttr(nil),
			"u", uriAttr("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"), "r", uriRefAttr("#frag"), "ts", ts(1, 2))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Validate(tc.ev)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			requireErr(t, err, *tc.want)
		})
	}
}

func TestValidateReportsSmallestBadName(t *testing.T) {
	ev := withAttrs(baseEvent(), "zz", uriAttr("rel"), "Bad", strAttr("x"), "mm", strAttr("\x00"), "aa", strAttr("ok"))
	for i := 0; i < 20; i++ { // map order must not matter
		requireErr(t, Validate(ev), wantErr{ErrInvalidAttribute, "Bad", -1})
	}
}

func TestValidateBatch(t *testing.T) {
	require.NoError(t, ValidateBatch(nil))
	require.NoError(t, ValidateBatch([]*pb.CloudEvent{baseEvent(), baseEvent()}))
	err := ValidateBatch([]*pb.CloudEvent{baseEvent(), {SpecVersion: "1.0", Id: "1", Type: "t"}, baseEvent(), nil})
	es := ceErrors(t, err)
	require.Len(t, es, 2)
	assert.Equal(t, wantErr{ErrMissingAttribute, "source", 1}, wantErr{es[0].Kind, es[0].Attribute, es[0].Index})
	assert.Equal(t, wantErr{ErrMalformed, "", 3}, wantErr{es[1].Kind, es[1].Attribute, es[1].Index})
	require.True(t, errors.Is(err, ErrMissingAttribute))
	require.True(t, errors.Is(err, ErrMalformed))
	require.EqualError(t, err, "event[1]: missing required attribute \"source\"\nevent[3]: malformed event: nil event")
}

func TestValidateDoesNotAllocate(t *testing.T) {
	ev := withAttrs(baseEvent(), AttrDataContentType, strAttr("application/json; charset=utf-8"),
		AttrDataSchema, uriAttr("https://example.com/s"), AttrSubject, strAttr("s"), AttrTime, tsAttr(t, "2020-01-01T00:00:00Z"),
		"ext", strAttr("v"), "n", intAttr(3))
	allocs := testing.AllocsPerRun(100, func() {
		if Validate(ev) != nil {
			t.Fatal("invalid")
		}
	})
	require.Zero(t, allocs)
}

func TestErrorFormatting(t *testing.T) {
	cases := map[string]struct {
		err  *Error
		want string
	}{
		"missing in batch": {&Error{Kind: ErrMissingAttribute, Attribute: "source", Index: 3}, `event[3]: missing required attribute "source"`},
		"invalid":          {&Error{Kind: ErrInvalidAttribute, Attribute: "time", Index: -1, Detail: `not an RFC 3339 timestamp: "yesterday"`}, `attribute "time": not an RFC 3339 timestamp: "yesterday"`},
		"data member":      {&Error{Kind: ErrMalformed, Attribute: "data_base64", Index: -1, Detail: "invalid base64"}, `member "data_base64": invalid base64`},
		"kind only":        {&Error{Kind: ErrEmptyBatch, Index: -1}, `empty batch`},
		"kind and detail":  {&Error{Kind: ErrTooLarge, Index: 0, Detail: "body of 3 bytes exceeds the limit of 2 bytes"}, `event[0]: too large: body of 3 bytes exceeds the limit of 2 bytes`},
		"unsupported":      {&Error{Kind: ErrUnsupportedMediaType, Index: -1, Detail: "x"}, `unsupported media type: x`},
		"nil kind":         {&Error{Index: -1, Detail: "x"}, `cloudevent error: x`},
		"foreign kind":     {&Error{Kind: errors.New("boom"), Index: -1}, `boom`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.err.Error())
			require.Equal(t, tc.err.Kind, tc.err.Unwrap())
			if tc.err.Kind != nil {
				require.True(t, errors.Is(tc.err, tc.err.Kind))
			}
		})
	}
	long := quoteDetail(string(make([]byte, 0)) + "é" + string(make([]byte, 300)))
	require.Less(t, len(long), 1000)
}

func TestCheckURI(t *testing.T) {
	refs := map[string]bool{
		"":                        true,
		"#fragment":               true,
		"/a/b?c=d#e":              true,
		"//authority/path":        true,
		"https://cloudevents.io":  true,
		"mailto:a@b.c":            true,
		"urn:uuid:6e8bc430-9c3a":  true,
		"1-555-123-4567":          true,
		"a/b:c":                   true,
		"http://[::1]:8080/x":     true,
		"http://u:p@host:1/":      true,
		"http://host:/":           true,
		"x+y.z-w:opaque":          true,
		"/%20%e2%82%ac":           true,
		"a b":                     false,
		"a\"b":                    false,
		"a<b>":                    false,
		"/caf\xc3\xa9":            false,
		"/a%2":                    false,
		"/a%g0":                   false,
		"1a:b":                    false,
		":nothing":                false,
		"a:b#c#d":                 false,
		"/p[1]":                   false,
		"?q=[1]":                  false,
		"http://[::1":             false,
		"http://[::1]x/":          false,
		"http://host:8x/":         false,
		"http://ho[st/":           false,
		"http://a@b@c/":           false,
		"http://[]/":              false,
		"tab\there":               false,
		"back\\slash":             false,
		"{braces}":                false,
		"http://example.com/^":    false,
		"http://example.com/a|b":  false,
		"http://example.com/`":    false,
		"http://example.com:80/a": true,
	}
	for s, ok := range refs {
		assert.Equalf(t, ok, checkURIRef(s) == "", "URI-reference %q: %s", s, checkURIRef(s))
	}
	abs := map[string]bool{
		"https://cloudevents.io/dataschema": true,
		"urn:example:x":                     true,
		"mailto:a@b.c":                      true,
		"HTTP://X/":                         true,
		"//authority/path":                  false,
		"/path":                             false,
		"":                                  false,
		"https://x/y#frag":                  false,
		"https://x /y":                      false,
	}
	for s, ok := range abs {
		assert.Equalf(t, ok, checkURI(s) == "", "URI %q: %s", s, checkURI(s))
	}
}

func TestParseMediaType(t *testing.T) {
	cases := map[string]struct {
		ok        bool
		json      bool
		text      bool
		typ, subt string
	}{
		"application/json":                        {ok: true, json: true, typ: "application", subt: "json"},
		"Application/JSON; charset=UTF-8":         {ok: true, json: true, typ: "Application", subt: "JSON"},
		"text/json":                               {ok: true, json: true, text: true, typ: "text", subt: "json"},
		"application/cloudevents+json":            {ok: true, json: true, typ: "application", subt: "cloudevents+json"},
		"application/vnd.api+json;v=1":            {ok: true, json: true, typ: "application", subt: "vnd.api+json"},
		"text/plain":                              {ok: true, text: true, typ: "text", subt: "plain"},
		"text/plain;":                             {ok: true, text: true, typ: "text", subt: "plain"},
		"text/plain ; charset=utf-8 ; format=x":   {ok: true, text: true, typ: "text", subt: "plain"},
		`multipart/mixed; boundary="a b;c=\"d\""`: {ok: true, typ: "multipart", subt: "mixed"},
		"application/jsonx":                       {ok: true, typ: "application", subt: "jsonx"},
		"application/x-json-stream":               {ok: true, typ: "application", subt: "x-json-stream"},
		"xyz":                                     {},
		"":                                        {},
		"/json":                                   {},
		"application/":                            {},
		"application/json/x":                      {},
		"application /json":                       {},
		" application/json":                       {},
		"application/json; charset":               {},
		"application/json; =x":                    {},
		"application/json; charset=":              {},
		`application/json; a="unterminated`:       {},
		"application/json; a=\"ctl\x01\"":         {},
		"application/json; a=b c":                 {},
		"application/json,text/plain":             {},
		"application/jsön":                        {},
	}
	for s, w := range cases {
		typ, sub, ok := parseMediaType(s)
		assert.Equalf(t, w.ok, ok, "%q", s)
		assert.Equalf(t, w.typ, typ, "%q", s)
		assert.Equalf(t, w.subt, sub, "%q", s)
		assert.Equalf(t, w.json, isJSONMediaType(s), "json %q", s)
		assert.Equalf(t, w.text, isTextMediaType(s), "text %q", s)
	}
	v, ok := mediaParam(`application/cloudevents+json; Charset="UTF-8"; x=y`, "charset")
	require.True(t, ok)
	require.Equal(t, "UTF-8", v)
	v, ok = mediaParam(`a/b; x="q\"z"; charset=latin1`, "charset")
	require.True(t, ok)
	require.Equal(t, "latin1", v)
	_, ok = mediaParam(`a/b; x=y`, "charset")
	require.False(t, ok)
}

func TestParseTimestamp(t *testing.T) {
	valid := map[string]string{
		"2018-04-05T17:31:00Z":             "2018-04-05T17:31:00Z",
		"2018-04-05T17:31:00.000000000Z":   "2018-04-05T17:31:00Z",
		"2018-04-05T18:31:00+01:00":        "2018-04-05T17:31:00Z",
		"2018-04-05T16:31:00-01:00":        "2018-04-05T17:31:00Z",
		"2018-04-05t17:31:00.1z":           "2018-04-05T17:31:00.1Z",
		"0001-01-01T00:00:00Z":             "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999999Z":   "9999-12-31T23:59:59.999999999Z",
		"2024-02-29T12:00:00+23:59":        "2024-02-28T12:01:00Z",
		"2018-04-05T17:31:00.12345678912Z": "2018-04-05T17:31:00.123456789Z",
	}
	for in, want := range valid {
		ts, ok := parseTimestamp(in)
		require.Truef(t, ok, "%q", in)
		require.Equal(t, want, string(appendTimestamp(nil, ts)), in)
		// Agrees with the standard library where both apply.
		if std, err := time.Parse(time.RFC3339Nano, in); err == nil {
			require.Equal(t, std.UnixNano(), ts.AsTime().UnixNano(), in)
		}
	}
	for _, in := range []string{
		"", "lunchtime", "2018-04-05", "2018-04-05T18:31Z", "2018-04-05T18:31:00X", "2018-04-05T18:31:00+25:00",
		"2018-04-05T18:31:00+xx:00", "2018-04-05T18:31:00+05", "2018-04-05T18:31:00+0500", "2018-13-05T18:31:00Z",
		"2018-00-05T18:31:00Z", "2018-04-00T18:31:00Z", "2018-04-31T18:31:00Z", "2018-04-05T18:60:00Z",
		"2018-04-05T18:31:60Z", "2018-04-05T18:31:00.Z", "2018-04-05T18:31:00.1", "2018-04-05T18:31:00ZZ",
		"+2018-04-05T18:31:00Z", "2018/04/05T18:31:00Z", "2018-04-05 18:31:00Z", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59-00:01", "2018-04-05T18:31:00+01:60", "２018-04-05T18:31:00Z", "2018-04-05T18:31:00.１Z",
	} {
		_, ok := parseTimestamp(in)
		require.Falsef(t, ok, "%q", in)
	}
}

func TestCheckName(t *testing.T) {
	for _, n := range []string{"a", "0", "abc123", "averylongnamethatexceedstwentychars"} {
		require.Empty(t, checkName(n), n)
	}
	for _, n := range []string{"", "A", "a-b", "a_b", "a.b", "a b", "é", "data"} {
		require.NotEmpty(t, checkName(n), n)
	}
}

// TestDataSchemaIsAnAbsoluteURI: CloudEvents 1.0 types dataschema as URI
// (absolute, RFC 3986 §4.3), so a protobuf type URL written without its
// scheme, as the protobuf format's examples show it, is refused in every
// mode with an error saying what to send instead; with the scheme it is
// accepted.
func TestDataSchemaIsAnAbsoluteURI(t *testing.T) {
	const typeURL = "type.googleapis.com/google.protobuf.Duration"
	err := Validate(withAttrs(baseEvent(), AttrDataSchema, uriAttr(typeURL)))
	requireErr(t, err, wantErr{ErrInvalidAttribute, AttrDataSchema, -1})
	require.Equal(t, `attribute "dataschema": not an absolute URI: no scheme: "`+typeURL+`" (an absolute URI needs a scheme: "https://`+typeURL+`")`, err.Error())
	require.NoError(t, Validate(withAttrs(baseEvent(), AttrDataSchema, uriAttr("https://"+typeURL))))

	// A relative reference that names no host gets no guess.
	err = Validate(withAttrs(baseEvent(), AttrDataSchema, uriAttr("schemas/order")))
	require.Equal(t, `attribute "dataschema": not an absolute URI: no scheme: "schemas/order"`, err.Error())

	_, err = DecodeStructured([]byte(obj(`"dataschema":"` + typeURL + `"`)))
	requireErr(t, err, wantErr{ErrInvalidAttribute, AttrDataSchema, -1})
	_, _, err = ReadRequest(req("", ceHeaders("Ce-Dataschema", typeURL)...), Limits{})
	requireErr(t, err, wantErr{ErrInvalidAttribute, AttrDataSchema, -1})
	evs, _, err := ReadRequest(req("", ceHeaders("Ce-Dataschema", "https://"+typeURL)...), Limits{})
	require.NoError(t, err)
	require.Equal(t, "https://"+typeURL, evs[0].GetAttributes()[AttrDataSchema].GetCeUri())
}
