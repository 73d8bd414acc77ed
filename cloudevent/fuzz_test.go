package cloudevent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fuzz targets. Each checks that the parser never panics, that every error
// is a well-formed *Error, and that whatever it accepts is valid, marshals
// as protobuf and survives EncodeStructured/DecodeStructured and
// WriteBinary/ReadRequest unchanged (see checkRoundTrips).

func FuzzDecodeStructured(f *testing.F) {
	for _, s := range []string{
		obj(),
		obj(`"data":{"a":[1,2,{"b":null}]}`),
		obj(`"datacontenttype":"text/plain"`, `"data":"hi\n\u00e9"`),
		obj(`"datacontenttype":"application/xml"`, `"data":5`),
		obj(`"data_base64":"AAEC"`),
		obj(`"time":"2018-04-05T17:31:00.123+01:00"`, `"subject":"s"`, `"dataschema":"https://x/y"`),
		obj(`"ext":1`, `"b":true`, `"s":"x"`, `"n":null`),
		obj(`"data":null`),
		`{"specversion":"1.0","id":"\ud83d\ude00","source":"#f","type":"t"}`,
		obj(`"id":"dup"`),
		`{"id":25}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeStructured(b)
		if err != nil {
			require.Nil(t, ev)
			ceErrors(t, err)
			return
		}
		require.True(t, json.Valid(b), "accepted invalid JSON %q", b)
		require.NoError(t, Validate(ev))
		checkRoundTrips(t, ev)
		enc, err := EncodeStructured(ev)
		require.NoError(t, err)
		require.True(t, json.Valid(enc))
		back, err := DecodeStructured(enc)
		require.NoError(t, err)
		enc2, err := EncodeStructured(back)
		require.NoError(t, err)
		require.Equal(t, string(enc), string(enc2), "encoding is not stable")
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`[]`,
		"[" + obj() + "]",
		"[" + obj() + "," + obj(`"data":"x"`) + "]",
		"[" + obj() + `,{"id":1},"x",null]`,
		"[" + obj(`"data_base64":"AA=="`) + "]",
		"[[]]",
		"{}",
		"[",
	} {
		f.Add([]byte(s), 0)
	}
	f.Add([]byte("["+obj()+","+obj()+"]"), 60)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max > 1<<20 {
			max = 1 << 20
		}
		evs, err := DecodeBatch(b, max)
		if err != nil {
			require.Nil(t, evs)
			for _, e := range ceErrors(t, err) {
				require.GreaterOrEqual(t, e.Index, -1)
			}
			return
		}
		require.NotNil(t, evs)
		require.True(t, json.Valid(b), "accepted invalid JSON %q", b)
		require.NoError(t, ValidateBatch(evs))
		// The count bound: a batch at the bound decodes the same, one past
		// it is refused whole.
		if len(evs) > 0 {
			same, err := decodeBatch(b, max, len(evs))
			require.NoError(t, err)
			require.Len(t, same, len(evs))
		}
		if len(evs) > 1 {
			_, err := decodeBatch(b, max, len(evs)-1)
			require.ErrorIs(t, err, ErrTooLarge)
		}
		enc, err := EncodeBatch(evs)
		require.NoError(t, err)
		require.True(t, json.Valid(enc))
		back, err := DecodeBatch(enc, 0)
		require.NoError(t, err)
		require.Len(t, back, len(evs))
		for i := range evs {
			requireEqualEvent(t, evs[i], back[i])
			checkRoundTrips(t, evs[i])
		}
	})
}

func FuzzReadRequestBinary(f *testing.F) {
	type seed struct {
		specversion, id, source, typ, extName, extValue, timeVal, subject, contentType string
		body                                                                           []byte
	}
	for _, s := range []seed{
		{"1.0", "1", "/src", "t", "ext", "v", "", "", "", nil},
		{"1.0", "id%20x", "https://x/y", "t", "traceparent", "00-abc-01", "2018-04-05T17:31:00Z", "Euro%20%E2%82%AC", "application/json", []byte(`{"a":1}`)},
		{"1.0", `"quoted id"`, "#f", "t", "Ext", "x", "", "", "text/plain; charset=utf-8", []byte("hello\n")},
		{"1.0", "1", "/s", "t", "e", "%C0%A0", "", "", "application/octet-stream", []byte{0, 1, 2}},
		{"1.0", "1", "/s", "t", "e", "", "yesterday", "", "application/cloudevents+json", []byte(obj())},
		{"1.0", "1", "/s", "t", "e", "", "", "", "application/cloudevents-batch+json", []byte("[" + obj() + "]")},
		{"1.0", "1", "/s", "t", "datacontenttype", "x", "", "", "application/json", []byte(" \n[1] ")},
		{"1.0", "1", "/s", "t", "e", "x", "", "", "application/json", []byte("  {\"a\" : 1}\r\n")},
		{"0.3", "", "", "", "", "", "", "", "text/plain", []byte("not an event")},
		{"1.0", "1", "/s", "t", "e", "x", "", "", "text/json", []byte("not json")},
		{"1.0", "1", "/s", "t", "e", "x", "", "", "text/plain", []byte("\xff\x00")},
		{"1.0", "1", "a%2520b", "t", "e", "%00", "2018-04-05T17:31:00.1234567891Z", "", "application/xml", []byte("<a/>")},
	} {
		f.Add(s.specversion, s.id, s.source, s.typ, s.extName, s.extValue, s.timeVal, s.subject, s.contentType, s.body)
	}
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, extName, extValue, timeVal, subject, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		set := func(k, v string) {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		set("Ce-Specversion", specversion)
		set("Ce-Id", id)
		set("Ce-Source", source)
		set("Ce-Type", typ)
		set("Ce-Time", timeVal)
		set("Ce-Subject", subject)
		set("Content-Type", contentType)
		r.Header["Ce-"+extName] = append(r.Header["Ce-"+extName], extValue)

		evs, mode, err := ReadRequest(r, Limits{MaxEventBytes: 64 << 10, MaxBatchBytes: 256 << 10})
		if err != nil {
			require.Nil(t, evs)
			ceErrors(t, err)
			return
		}
		require.NotEqual(t, ModeUnknown, mode)
		require.NotEmpty(t, evs)
		for _, ev := range evs {
			require.NoError(t, Validate(ev))
			checkRoundTrips(t, ev)
		}
	})
}
