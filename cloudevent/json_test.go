package cloudevent

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
)

// base is the JSON text of the required attributes, to build cases from.
const base = `"specversion":"1.0","id":"1","source":"/src","type":"t"`

func obj(members ...string) string {
	return "{" + strings.Join(append([]string{base}, members...), ",") + "}"
}

func baseEvent() *pb.CloudEvent {
	return &pb.CloudEvent{SpecVersion: "1.0", Id: "1", Source: "/src", Type: "t"}
}

func TestDecodeStructuredErrors(t *testing.T) {
	cases := map[string]struct {
		in   string
		want wantErr
	}{
		// Malformed input.
		"empty input":              {``, wantErr{ErrMalformed, "", -1}},
		"only whitespace":          {" \n\t ", wantErr{ErrMalformed, "", -1}},
		"truncated object":         {`{"specversion":"1.0","id":`, wantErr{ErrMalformed, "", -1}},
		"truncated string":         {`{"specversion":"1.0`, wantErr{ErrMalformed, "", -1}},
		"missing colon":            {`{"id" "1"}`, wantErr{ErrMalformed, "", -1}},
		"missing comma":            {`{"id":"1" "type":"t"}`, wantErr{ErrMalformed, "", -1}},
		"trailing comma":           {`{` + base + `,}`, wantErr{ErrMalformed, "", -1}},
		"single quotes":            {`{'id':'1'}`, wantErr{ErrMalformed, "", -1}},
		"unquoted key":             {`{id:"1"}`, wantErr{ErrMalformed, "", -1}},
		"top-level array":          {`[` + obj() + `]`, wantErr{ErrMalformed, "", -1}},
		"top-level string":         {`"event"`, wantErr{ErrMalformed, "", -1}},
		"top-level number":         {`42`, wantErr{ErrMalformed, "", -1}},
		"top-level null":           {`null`, wantErr{ErrMalformed, "", -1}},
		"garbage":                  {`<xml/>`, wantErr{ErrMalformed, "", -1}},
		"trailing data":            {obj() + ` {}`, wantErr{ErrMalformed, "", -1}},
		"two objects":              {obj() + obj(), wantErr{ErrMalformed, "", -1}},
		"byte order mark":          {"\xEF\xBB\xBF" + obj(), wantErr{ErrMalformed, "", -1}},
		"invalid UTF-8 in value":   {obj(`"ext":"a` + "\xff" + `"`), wantErr{ErrMalformed, "", -1}},
		"invalid UTF-8 in data":    {obj(`"data":{"k":"` + "\xc0\xa0" + `"}`), wantErr{ErrMalformed, "", -1}},
		"raw control char":         {obj(`"ext":"a` + "\n" + `"`), wantErr{ErrMalformed, "", -1}},
		"bad escape":               {obj(`"ext":"\x41"`), wantErr{ErrMalformed, "", -1}},
		"short unicode escape":     {obj(`"ext":"\u12"`), wantErr{ErrMalformed, "", -1}},
		"bad literal":              {obj(`"ext":tru`), wantErr{ErrMalformed, "", -1}},
		"bad number":               {obj(`"ext":01`), wantErr{ErrMalformed, "", -1}},
		"bad number in data":       {obj(`"data":[1.]`), wantErr{ErrMalformed, "", -1}},
		"unclosed data array":      {obj(`"data":[1,2`), wantErr{ErrMalformed, "", -1}},
		"mismatched data brackets": {obj(`"data":[1,2}`), wantErr{ErrMalformed, "", -1}},
		"duplicate id":             {obj(`"id":"2"`), wantErr{ErrMalformed, "id", -1}},
		"duplicate id via escape":  {obj(`"i\u0064":"2"`), wantErr{ErrMalformed, "id", -1}},
		"duplicate null time":      {obj(`"time":null`, `"time":null`), wantErr{ErrMalformed, "time", -1}},
		"duplicate extension":      {obj(`"ext":"a"`, `"ext":"b"`), wantErr{ErrMalformed, "ext", -1}},
		"duplicate null extension": {obj(`"ext":null`, `"ext":1`), wantErr{ErrMalformed, "ext", -1}},
		"duplicate data":           {obj(`"data":1`, `"data":2`), wantErr{ErrMalformed, "data", -1}},
		"both data and base64":     {obj(`"data":"x"`, `"data_base64":"eA=="`), wantErr{ErrMalformed, "", -1}},
		"null data and base64":     {obj(`"data":null`, `"data_base64":"eA=="`), wantErr{ErrMalformed, "", -1}},
		"bad base64":               {obj(`"data_base64":"not base64!"`), wantErr{ErrMalformed, "data_base64", -1}},
		"base64 bad padding":       {obj(`"data_base64":"eA="`), wantErr{ErrMalformed, "data_base64", -1}},
		"base64 not a string":      {obj(`"data_base64":[1]`), wantErr{ErrMalformed, "data_base64", -1}},
		"data lone surrogate":      {obj(`"datacontenttype":"text/plain"`, `"data":"\ud800"`), wantErr{ErrMalformed, "data", -1}},

		// Wrong JSON types.
		"id number":                 {`{"specversion":"1.0","id":25,"source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "id", -1}},
		"source boolean":            {`{"specversion":"1.0","id":"1","source":true,"type":"t"}`, wantErr{ErrInvalidAttribute, "source", -1}},
		"type object":               {`{"specversion":"1.0","id":"1","source":"/s","type":{}}`, wantErr{ErrInvalidAttribute, "type", -1}},
		"specversion number":        {`{"specversion":1.0,"id":"1","source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "specversion", -1}},
		"time number":               {obj(`"time":1522949460`), wantErr{ErrInvalidAttribute, "time", -1}},
		"subject array":             {obj(`"subject":["a"]`), wantErr{ErrInvalidAttribute, "subject", -1}},
		"datacontenttype number":    {obj(`"datacontenttype":5`), wantErr{ErrInvalidAttribute, "datacontenttype", -1}},
		"dataschema boolean":        {obj(`"dataschema":false`), wantErr{ErrInvalidAttribute, "dataschema", -1}},
		"extension object":          {obj(`"ext":{"a":1}`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension array":           {obj(`"ext":[1]`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension fraction":        {obj(`"ext":1.5`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension integral float":  {obj(`"ext":1.0`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension exponent":        {obj(`"ext":1e3`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension above int32":     {obj(`"ext":2147483648`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension below int32":     {obj(`"ext":-2147483649`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension huge integer":    {obj(`"ext":123456789012345678901234567890`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension lone surrogate":  {obj(`"ext":"\udc00"`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension reversed pair":   {obj(`"ext":"\udc00\ud800"`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"extension high then ascii": {obj(`"ext":"\ud800\u0041"`), wantErr{ErrInvalidAttribute, "ext", -1}},

		// Missing or empty required attributes.
		"missing specversion": {`{"id":"1","source":"/s","type":"t"}`, wantErr{ErrMissingAttribute, "specversion", -1}},
		"missing id":          {`{"specversion":"1.0","source":"/s","type":"t"}`, wantErr{ErrMissingAttribute, "id", -1}},
		"missing source":      {`{"specversion":"1.0","id":"1","type":"t"}`, wantErr{ErrMissingAttribute, "source", -1}},
		"missing type":        {`{"specversion":"1.0","id":"1","source":"/s"}`, wantErr{ErrMissingAttribute, "type", -1}},
		"null id":             {`{"specversion":"1.0","id":null,"source":"/s","type":"t"}`, wantErr{ErrMissingAttribute, "id", -1}},
		"empty object":        {`{}`, wantErr{ErrMissingAttribute, "specversion", -1}},
		"empty id":            {`{"specversion":"1.0","id":"","source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "id", -1}},

		// Bad values.
		"specversion 0.3":            {`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "specversion", -1}},
		"specversion 1.0.2":          {`{"specversion":"1.0.2","id":"1","source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "specversion", -1}},
		"id control char":            {`{"specversion":"1.0","id":"a\u0001","source":"/s","type":"t"}`, wantErr{ErrInvalidAttribute, "id", -1}},
		"type C1 control char":       {`{"specversion":"1.0","id":"1","source":"/s","type":"a\u0085"}`, wantErr{ErrInvalidAttribute, "type", -1}},
		"subject noncharacter":       {obj(`"subject":"a\uffff"`), wantErr{ErrInvalidAttribute, "subject", -1}},
		"extension noncharacter":     {obj(`"ext":"\ufdd0"`), wantErr{ErrInvalidAttribute, "ext", -1}},
		"source with space":          {`{"specversion":"1.0","id":"1","source":"/my source","type":"t"}`, wantErr{ErrInvalidAttribute, "source", -1}},
		"source bad scheme":          {`{"specversion":"1.0","id":"1","source":"1http://x","type":"t"}`, wantErr{ErrInvalidAttribute, "source", -1}},
		"source bad percent":         {`{"specversion":"1.0","id":"1","source":"/a%zz","type":"t"}`, wantErr{ErrInvalidAttribute, "source", -1}},
		"source non-ASCII":           {`{"specversion":"1.0","id":"1","source":"/caf\u00e9","type":"t"}`, wantErr{ErrInvalidAttribute, "source", -1}},
		"dataschema relative":        {obj(`"dataschema":"/schema.json"`), wantErr{ErrInvalidAttribute, "dataschema", -1}},
		"dataschema fragment":        {obj(`"dataschema":"https://x/s#v1"`), wantErr{ErrInvalidAttribute, "dataschema", -1}},
		"datacontenttype no subtype": {obj(`"datacontenttype":"text/"`), wantErr{ErrInvalidAttribute, "datacontenttype", -1}},
		"datacontenttype bad param":  {obj(`"datacontenttype":"text/plain; charset"`), wantErr{ErrInvalidAttribute, "datacontenttype", -1}},
		"datacontenttype spaces":     {obj(`"datacontenttype":"text / plain"`), wantErr{ErrInvalidAttribute, "datacontenttype", -1}},
		"time yesterday":             {obj(`"time":"yesterday"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time 24:00":                 {obj(`"time":"2018-04-05T24:00:00Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time february 30":           {obj(`"time":"2018-02-30T00:00:00Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time february 29 non-leap":  {obj(`"time":"2100-02-29T00:00:00Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time leap second":           {obj(`"time":"2016-12-31T23:59:60Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time no offset":             {obj(`"time":"2018-04-05T17:31:00"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time space separator":       {obj(`"time":"2018-04-05 17:31:00Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time empty fraction":        {obj(`"time":"2018-04-05T17:31:00.Z"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time before year 1":         {obj(`"time":"0001-01-01T00:00:00+01:00"`), wantErr{ErrInvalidAttribute, "time", -1}},
		"time empty":                 {obj(`"time":""`), wantErr{ErrInvalidAttribute, "time", -1}},

		// Bad attribute names.
		"upper-case name":  {obj(`"MyExt":"x"`), wantErr{ErrInvalidAttribute, "MyExt", -1}},
		"dash in name":     {obj(`"my-ext":"x"`), wantErr{ErrInvalidAttribute, "my-ext", -1}},
		"underscore name":  {obj(`"my_ext":"x"`), wantErr{ErrInvalidAttribute, "my_ext", -1}},
		"dot in name":      {obj(`"my.ext":1.5`), wantErr{ErrInvalidAttribute, "my.ext", -1}},
		"empty name":       {obj(`"":"x"`), wantErr{ErrInvalidAttribute, "", -1}},
		"non-ASCII name":   {obj(`"caf\u00e9":"x"`), wantErr{ErrInvalidAttribute, "café", -1}},
		"null bad name":    {obj(`"Bad":null`), wantErr{ErrInvalidAttribute, "Bad", -1}},
		"name lone surrog": {obj(`"\ud800":"x"`), wantErr{ErrInvalidAttribute, `\ud800`, -1}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev, err := DecodeStructured([]byte(tc.in))
			require.Nil(t, ev)
			e := requireErr(t, err, tc.want)
			assert.NotContains(t, e.Error(), "\n")
		})
	}
}

func TestDecodeStructuredErrorMessages(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"missing":     {`{"specversion":"1.0","id":"1","type":"t"}`, `missing required attribute "source"`},
		"time":        {obj(`"time":"yesterday"`), `attribute "time": not an RFC 3339 timestamp: "yesterday"`},
		"both":        {obj(`"data":1`, `"data_base64":"eA=="`), `malformed event: both "data" and "data_base64" are present`},
		"syntax":      {`{"id" 1}`, `malformed event: invalid JSON at byte 6: unexpected '1' after object member name`},
		"end":         {`{"id":`, `malformed event: invalid JSON: unexpected end of input`},
		"type":        {`{"specversion":"1.0","id":25}`, `attribute "id": must be a JSON string, got number`},
		"duplicate":   {obj(`"type":"u"`), `attribute "type": duplicate member in JSON object`},
		"base64":      {obj(`"data_base64":"*"`), `member "data_base64": invalid base64: illegal base64 data at input byte 0`},
		"specversion": {`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, `attribute "specversion": unsupported version "0.3", want "1.0"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeStructured([]byte(tc.in))
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestDecodeStructuredValid(t *testing.T) {
	cases := map[string]struct {
		in   string
		want *pb.CloudEvent
	}{
		"minimal": {obj(), baseEvent()},
		"whitespace everywhere": {" \r\n\t{ \"specversion\" : \"1.0\" ,\n\"id\":\"1\", \"source\" :\"/src\",\"type\":\"t\" }\n",
			baseEvent()},
		"member order irrelevant": {`{"type":"t","source":"/src","id":"1","specversion":"1.0"}`, baseEvent()},
		"null optionals": {obj(`"datacontenttype":null`, `"dataschema":null`, `"subject":null`, `"time":null`, `"ext":null`, `"data_base64":null`),
			baseEvent()},
		"escaped member names": {`{"spec\u0076ersion":"1.0","\u0069d":"1","source":"/src","type":"t","e\u0078t":"x"}`,
			withAttrs(baseEvent(), "ext", strAttr("x"))},
		"escaped values": {`{"specversion":"1.0","id":"a\"b\\c\/d \u00e9\ud83d\ude00","source":"/src","type":"t"}`,
			&pb.CloudEvent{SpecVersion: "1.0", Id: "a\"b\\c/d é😀", Source: "/src", Type: "t"}},
		"all core attributes": {obj(`"datacontenttype":"text/plain; charset=utf-8"`, `"dataschema":"urn:example:schema"`, `"subject":"s"`, `"time":"2018-04-05T17:31:00.123456789Z"`),
			withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain; charset=utf-8"), AttrDataSchema, uriAttr("urn:example:schema"),
				AttrSubject, strAttr("s"), AttrTime, tsAttr(t, "2018-04-05T17:31:00.123456789Z"))},
		"time offset normalized":  {obj(`"time":"2018-04-05T19:01:00.5+01:30"`), withAttrs(baseEvent(), AttrTime, tsAttr(t, "2018-04-05T17:31:00.5Z"))},
		"time lower-case t and z": {obj(`"time":"2018-04-05t17:31:00z"`), withAttrs(baseEvent(), AttrTime, tsAttr(t, "2018-04-05T17:31:00Z"))},
		"time long fraction":      {obj(`"time":"2018-04-05T17:31:00.1234567891234Z"`), withAttrs(baseEvent(), AttrTime, tsAttr(t, "2018-04-05T17:31:00.123456789Z"))},
		"time leap day":           {obj(`"time":"2000-02-29T00:00:00-00:00"`), withAttrs(baseEvent(), AttrTime, tsAttr(t, "2000-02-29T00:00:00Z"))},
		"extensions by JSON type": {obj(`"s":"text"`, `"b":true`, `"f":false`, `"i":10`, `"n":-7`, `"z":-0`, `"max":2147483647`, `"min":-2147483648`, `"empty":""`),
			withAttrs(baseEvent(), "s", strAttr("text"), "b", boolAttr(true), "f", boolAttr(false), "i", intAttr(10), "n", intAttr(-7),
				"z", intAttr(0), "max", intAttr(2147483647), "min", intAttr(-2147483648), "empty", strAttr(""))},
		"long extension name": {obj(`"averyveryverylongextensionname42":"x"`), withAttrs(baseEvent(), "averyveryverylongextensionname42", strAttr("x"))},
		"digit-first name":    {obj(`"1ext":"x"`), withAttrs(baseEvent(), "1ext", strAttr("x"))},
		"source forms": {`{"specversion":"1.0","id":"1","source":"mailto:cncf-wg-serverless@lists.cncf.io","type":"t"}`,
			&pb.CloudEvent{SpecVersion: "1.0", Id: "1", Source: "mailto:cncf-wg-serverless@lists.cncf.io", Type: "t"}},

		// Data placement.
		"JSON data, no content type, byte-exact": {obj(`"data": { "a" : [1, 2.5e3, "x\u00e9"] , "b":null }`),
			withText(baseEvent(), `{ "a" : [1, 2.5e3, "x\u00e9"] , "b":null }`)},
		"JSON data with params": {obj(`"datacontenttype":"application/json; charset=utf-8"`, `"data":[ 1,2 ]`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/json; charset=utf-8")), `[ 1,2 ]`)},
		"+json data": {obj(`"datacontenttype":"application/vnd.example+JSON"`, `"data":{"k":1}`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/vnd.example+JSON")), `{"k":1}`)},
		"text/json data": {obj(`"datacontenttype":"text/json"`, `"data":true`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/json")), `true`)},
		"JSON string data keeps quotes": {obj(`"data":"a\nb"`), withText(baseEvent(), `"a\nb"`)},
		"JSON empty string data":        {obj(`"data":""`), withText(baseEvent(), `""`)},
		"JSON null data":                {obj(`"data":null`), withText(baseEvent(), `null`)},
		"JSON number data":              {obj(`"data":-1.5E+3`), withText(baseEvent(), `-1.5E+3`)},
		"duplicate keys inside data":    {obj(`"data":{"a":1,"a":2}`), withText(baseEvent(), `{"a":1,"a":2}`)},
		"deeply nested data": {obj(`"data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000)),
			withText(baseEvent(), strings.Repeat("[", 10000)+strings.Repeat("]", 10000))},
		"text data unescaped": {obj(`"datacontenttype":"text/plain"`, `"data":"line1\nline2 \"q\" \u00e9"`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain")), "line1\nline2 \"q\" é")},
		"xml data string": {obj(`"datacontenttype":"application/xml"`, `"data":"<much wow=\"xml\"/>"`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/xml")), `<much wow="xml"/>`)},
		"non-JSON type, object data kept raw": {obj(`"datacontenttype":"text/plain"`, `"data":{ "a":1 }`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain")), `{ "a":1 }`)},
		"non-JSON type, number data kept raw": {obj(`"datacontenttype":"text/plain"`, `"data":5`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain")), `5`)},
		"non-JSON type, empty string is no data": {obj(`"datacontenttype":"text/plain"`, `"data":""`),
			withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain"))},
		"content type after data": {obj(`"data":"hello"`, `"datacontenttype":"text/plain"`),
			withText(withAttrs(baseEvent(), AttrDataContentType, strAttr("text/plain")), "hello")},
		"base64 data": {obj(`"datacontenttype":"application/octet-stream"`, `"data_base64":"AAEC/w=="`),
			withBinary(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/octet-stream")), []byte{0, 1, 2, 0xff})},
		"base64 with escaped slash": {obj(`"data_base64":"AAEC\/w=="`), withBinary(baseEvent(), []byte{0, 1, 2, 0xff})},
		"base64 JSON content type":  {obj(`"datacontenttype":"application/json"`, `"data_base64":"eyJhIjoxfQ=="`), withBinary(withAttrs(baseEvent(), AttrDataContentType, strAttr("application/json")), []byte(`{"a":1}`))},
		"empty base64 is no data":   {obj(`"data_base64":""`), baseEvent()},
		"null base64 and data":      {obj(`"data_base64":null`, `"data":1`), withText(baseEvent(), `1`)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev, err := DecodeStructured([]byte(tc.in))
			require.NoError(t, err)
			requireEqualEvent(t, tc.want, ev)
			checkRoundTrips(t, ev)
		})
	}
}

func TestDecodeStructuredDoesNotAlias(t *testing.T) {
	in := []byte(obj(`"ext":"value"`, `"data":{"k":"v"}`))
	ev, err := DecodeStructured(in)
	require.NoError(t, err)
	for i := range in {
		in[i] = 'X'
	}
	requireEqualEvent(t, withText(withAttrs(baseEvent(), "ext", strAttr("value")), `{"k":"v"}`), ev)

	in = []byte(obj(`"data_base64":"AAEC"`))
	ev, err = DecodeStructured(in)
	require.NoError(t, err)
	copy(in, bytes.Repeat([]byte{'X'}, len(in)))
	require.Equal(t, []byte{0, 1, 2}, ev.GetBinaryData())
}

func TestDecodeBatch(t *testing.T) {
	ok := obj()
	noSource := `{"specversion":"1.0","id":"2","type":"t"}`
	cases := map[string]struct {
		in     string
		max    int
		want   []wantErr // nil means success
		events int
	}{
		"empty batch is valid":     {in: `[]`, events: 0},
		"empty batch, whitespace":  {in: " [ \n ] ", events: 0},
		"two events":               {in: "[" + ok + "," + ok + "]", events: 2},
		"empty input":              {in: ``, want: []wantErr{{ErrMalformed, "", -1}}},
		"non-array batch (object)": {in: ok, want: []wantErr{{ErrMalformed, "", -1}}},
		"non-array batch (string)": {in: `"[]"`, want: []wantErr{{ErrMalformed, "", -1}}},
		"non-array batch (null)":   {in: `null`, want: []wantErr{{ErrMalformed, "", -1}}},
		"garbage":                  {in: `nope`, want: []wantErr{{ErrMalformed, "", -1}}},
		"trailing data":            {in: "[" + ok + "] []", want: []wantErr{{ErrMalformed, "", -1}}},
		"trailing comma":           {in: "[" + ok + ",]", want: []wantErr{{ErrMalformed, "", 1}}},
		"missing comma":            {in: "[" + ok + ok + "]", want: []wantErr{{ErrMalformed, "", 0}}},
		"unterminated":             {in: "[" + ok, want: []wantErr{{ErrMalformed, "", 0}}},
		"malformed third event":    {in: "[" + ok + "," + noSource + `,{"id":]`, want: []wantErr{{ErrMalformed, "", 2}}},
		"one bad event names its index": {in: "[" + ok + "," + ok + "," + noSource + "]",
			want: []wantErr{{ErrMissingAttribute, "source", 2}}},
		"all bad events reported": {in: "[" + noSource + "," + ok + `,"x",` + obj(`"time":"x"`) + "," + `{"id":1}` + "]",
			want: []wantErr{{ErrMissingAttribute, "source", 0}, {ErrMalformed, "", 2}, {ErrInvalidAttribute, "time", 3}, {ErrInvalidAttribute, "id", 4}}},
		"nested array element": {in: "[[" + ok + "]]", want: []wantErr{{ErrMalformed, "", 0}}},
		"null element":         {in: "[null]", want: []wantErr{{ErrMalformed, "", 0}}},
		"oversized event": {in: "[" + ok + "," + obj(`"data":"`+strings.Repeat("x", 200)+`"`) + "," + ok + "]", max: 150,
			want: []wantErr{{ErrTooLarge, "", 1}}},
		"event at the limit": {in: "[" + ok + "]", max: len(ok), events: 1},
		"event over the limit": {in: "[" + ok + "]", max: len(ok) - 1,
			want: []wantErr{{ErrTooLarge, "", 0}}},
		"duplicate member in event": {in: "[" + ok + "," + obj(`"id":"x"`) + "]", want: []wantErr{{ErrMalformed, "id", 1}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			evs, err := DecodeBatch([]byte(tc.in), tc.max)
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, evs)
				require.Len(t, evs, tc.events)
				for _, ev := range evs {
					checkRoundTrips(t, ev)
				}
				return
			}
			require.Nil(t, evs)
			es := ceErrors(t, err)
			require.Len(t, es, len(tc.want), "errors: %v", err)
			for i, w := range tc.want {
				assert.Equal(t, w.kind, es[i].Kind, "error %d: %v", i, es[i])
				assert.Equal(t, w.attr, es[i].Attribute, "error %d: %v", i, es[i])
				assert.Equal(t, w.index, es[i].Index, "error %d: %v", i, es[i])
				require.True(t, strings.HasPrefix(es[i].Error(), "event[") == (w.index >= 0), es[i].Error())
			}
		})
	}
}

func TestDecodeBatchErrorMessage(t *testing.T) {
	_, err := DecodeBatch([]byte("["+obj()+","+obj()+","+obj()+`,{"specversion":"1.0","id":"x","type":"t"}]`), 0)
	require.EqualError(t, err, `event[3]: missing required attribute "source"`)
}

func TestEncodeStructured(t *testing.T) {
	ev := withText(withAttrs(baseEvent(),
		AttrTime, tsAttr(t, "2018-04-05T17:31:00.5Z"),
		AttrSubject, strAttr("sub\"ject"),
		"zext", intAttr(-3),
		"bext", boolAttr(true),
		"text", strAttr("quote\" é"),
		AttrDataContentType, strAttr("application/json"),
	), ` {"k": [1, 2]}`[1:])
	b, err := EncodeStructured(ev)
	require.NoError(t, err)
	require.Equal(t, `{"specversion":"1.0","id":"1","source":"/src","type":"t","bext":true,"datacontenttype":"application/json","subject":"sub\"ject","text":"quote\" é","time":"2018-04-05T17:31:00.5Z","zext":-3,"data":{"k": [1, 2]}}`, string(b))
	require.True(t, json.Valid(b))
	back, err := DecodeStructured(b)
	require.NoError(t, err)
	requireEqualEvent(t, ev, back)
}

func TestEncodeStructuredData(t *testing.T) {
	ct := func(ev *pb.CloudEvent, c string) *pb.CloudEvent {
		return withAttrs(ev, AttrDataContentType, strAttr(c))
	}
	cases := map[string]struct {
		ev         *pb.CloudEvent
		wantMember string // JSON text of the data member(s), "" for none
		// same is false when the decoded event differs from ev (only
		// possible for events no decoder of this package produces).
		same bool
	}{
		"no data":                    {baseEvent(), ``, true},
		"empty text is no data":      {withText(baseEvent(), ""), ``, false},
		"JSON text, no content type": {withText(baseEvent(), `{"a":1}`), `"data":{"a":1}`, true},
		"JSON text, JSON type":       {withText(ct(baseEvent(), "application/cloudevents+json"), `[1]`), `"data":[1]`, true},
		"JSON string text":           {withText(baseEvent(), `"s"`), `"data":"s"`, true},
		"invalid JSON under JSON type goes base64": {withText(ct(baseEvent(), "application/json"), `not json`),
			`"data_base64":"bm90IGpzb24="`, false},
		"JSON with surrounding space goes base64": {withText(baseEvent(), " 1 "), `"data_base64":"IDEg"`, false},
		"text as string":                 {withText(ct(baseEvent(), "text/plain"), "a\"b\n\u2028"), `"data":"a\"b\n` + "\u2028" + `"`, true},
		"invalid UTF-8 text goes base64": {withText(ct(baseEvent(), "text/plain"), "\xff"), `"data_base64":"/w=="`, false},
		"binary":                         {withBinary(ct(baseEvent(), "application/octet-stream"), []byte{0xde, 0xad}), `"data_base64":"3q0="`, true},
		"binary JSON":                    {withBinary(ct(baseEvent(), "application/json"), []byte(`{}`)), `"data_base64":"e30="`, true},
		"empty binary is no data":        {withBinary(baseEvent(), []byte{}), ``, false},
		"proto data as base64": {func() *pb.CloudEvent {
			ev := ct(baseEvent(), "application/protobuf")
			ev.Data = &pb.CloudEvent_ProtoData{ProtoData: &anypb.Any{TypeUrl: "type.googleapis.com/x", Value: []byte{1, 2}}}
			return ev
		}(), `"data_base64":"AQI="`, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := EncodeStructured(tc.ev)
			require.NoError(t, err)
			require.True(t, json.Valid(b), string(b))
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &m))
			_, hasData := m["data"]
			_, hasB64 := m["data_base64"]
			require.False(t, hasData && hasB64)
			if tc.wantMember == "" {
				require.False(t, hasData || hasB64, string(b))
			} else {
				require.Contains(t, string(b), ","+tc.wantMember+"}")
			}
			back, err := DecodeStructured(b)
			require.NoError(t, err)
			if tc.same {
				requireEqualEvent(t, tc.ev, back)
			}
			// Whatever the placement, the data bytes survive.
			require.Equal(t, string(Data(tc.ev)), string(Data(back)))
		})
	}
}

func TestEncodeTypedExtensions(t *testing.T) {
	// The JSON format has no native type for URI, URI-reference, binary and
	// timestamp: they are written as canonical strings and read back as
	// ce_string with the same canonical form.
	ev := withAttrs(baseEvent(),
		"u", uriAttr("https://example.com/a?b"),
		"r", uriRefAttr("../x"),
		"by", bytesAttr([]byte("Ma")),
		"ts", tsAttr(t, "2023-03-31T15:12:00Z"))
	b, err := EncodeStructured(ev)
	require.NoError(t, err)
	require.Equal(t, `{"specversion":"1.0","id":"1","source":"/src","type":"t","by":"TWE=","r":"../x","ts":"2023-03-31T15:12:00Z","u":"https://example.com/a?b"}`, string(b))
	back, err := DecodeStructured(b)
	require.NoError(t, err)
	for name := range ev.Attributes {
		w, _ := Attribute(ev, name)
		g, _ := Attribute(back, name)
		require.Equal(t, w, g, name)
		require.NotNil(t, back.Attributes[name].GetAttr().(*pb.CloudEventAttributeValue_CeString), name)
	}
}

func TestEncodeInvalid(t *testing.T) {
	_, err := EncodeStructured(&pb.CloudEvent{SpecVersion: "1.0", Id: "1", Type: "t"})
	requireErr(t, err, wantErr{ErrMissingAttribute, "source", -1})
	_, err = EncodeStructured(nil)
	requireErr(t, err, wantErr{ErrMalformed, "", -1})

	_, err = EncodeBatch([]*pb.CloudEvent{baseEvent(), {SpecVersion: "0.3"}, baseEvent(), withAttrs(baseEvent(), "Bad", strAttr("x"))})
	es := ceErrors(t, err)
	require.Len(t, es, 2)
	require.Equal(t, 1, es[0].Index)
	require.Equal(t, ErrInvalidAttribute, es[0].Kind)
	require.Equal(t, 3, es[1].Index)
	require.Equal(t, "Bad", es[1].Attribute)
}

func TestEncodeBatch(t *testing.T) {
	b, err := EncodeBatch(nil)
	require.NoError(t, err)
	require.Equal(t, "[]", string(b))

	evs := []*pb.CloudEvent{baseEvent(), withText(withAttrs(baseEvent(), "n", intAttr(1)), `{"x":[]}`), withBinary(baseEvent(), []byte{7})}
	b, err = EncodeBatch(evs)
	require.NoError(t, err)
	require.True(t, json.Valid(b))
	back, err := DecodeBatch(b, 0)
	require.NoError(t, err)
	require.Len(t, back, 3)
	for i := range evs {
		requireEqualEvent(t, evs[i], back[i])
	}
}

func TestEncodeJSONStringEscaping(t *testing.T) {
	// Every string Encode writes must be valid JSON that decodes to the
	// same value, whatever the content.
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x01\x1f\x7f", "\u2028\u2029", "é😀", "\xff\xfe", "</script>"} {
		b := appendJSONString(nil, s)
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		var got string
		require.NoError(t, json.Unmarshal(b, &got))
		if s != "\xff\xfe" {
			require.Equal(t, s, got)
		} else {
			require.Equal(t, "\ufffd\ufffd", got)
		}
	}
}

func TestDecodeBatchErrorCap(t *testing.T) {
	in := "[" + strings.Repeat(`{},`, 3*MaxBatchErrors) + "{}]"
	evs, err := DecodeBatch([]byte(in), 0)
	require.Nil(t, evs)
	es := ceErrors(t, err)
	require.Len(t, es, MaxBatchErrors+1)
	for i, e := range es[:MaxBatchErrors] {
		require.Equal(t, i, e.Index)
		require.Equal(t, ErrMissingAttribute, e.Kind)
	}
	last := es[MaxBatchErrors]
	require.Equal(t, ErrMalformed, last.Kind)
	require.Equal(t, -1, last.Index)
	require.Contains(t, last.Error(), "not checked")

	// Exactly MaxBatchErrors bad events are all reported, without the
	// summary.
	in = "[" + strings.Repeat(`{},`, MaxBatchErrors-1) + "{}]"
	_, err = DecodeBatch([]byte(in), 0)
	require.Len(t, ceErrors(t, err), MaxBatchErrors)
}
