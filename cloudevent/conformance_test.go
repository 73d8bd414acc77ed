package cloudevent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// The CloudEvents JSON format conformance cases live in
// testdata/conformance (copied from the CloudEvents project, Apache-2.0; see
// the README.md and LICENSE there). TestConformanceJSON runs every case of
// every file there; TestConformanceCopyIsCurrent holds the copy to the
// project's shared conformance folder when a checkout has it beside it.

type conformanceFile struct {
	TestType string            `json:"testType"`
	Tests    []conformanceCase `json:"tests"`
}

type conformanceCase struct {
	ID                        string          `json:"id"`
	SampleID                  string          `json:"sampleId"`
	TestType                  string          `json:"testType"`
	Description               string          `json:"description"`
	Event                     json.RawMessage `json:"event"`
	Batch                     json.RawMessage `json:"batch"`
	SampleExtensionAttributes bool            `json:"sampleExtensionAttributes"`
	ExtensionConstraints      bool            `json:"extensionConstraints"`
}

// conformanceSamples are the "golden" events the valid cases name by
// sampleId.
func conformanceSamples(t *testing.T) map[string][]*pb.CloudEvent {
	minimal := func() *pb.CloudEvent { return minimalEvent("minimal") }
	allCore := func() *pb.CloudEvent {
		return withAttrs(minimalEvent("allCore"),
			AttrDataContentType, strAttr("text/plain"),
			AttrDataSchema, uriAttr("https://cloudevents.io/dataschema"),
			AttrSubject, strAttr("tests"),
			AttrTime, tsAttr(t, "2018-04-05T17:31:00Z"))
	}
	// Without extension definitions the JSON format can only infer
	// string, boolean and integer types; URI, URI-reference, timestamp and
	// binary extensions arrive as strings (ce_string), with the same
	// canonical string form the typed sample has.
	allExtensionTypes := func() *pb.CloudEvent {
		return withAttrs(minimalEvent("allExtensionTypes"),
			"extinteger", intAttr(10),
			"extboolean", boolAttr(true),
			"extstring", strAttr("text"),
			"exturi", strAttr("https://cloudevents.io"),
			"exturiref", strAttr("//authority/path"),
			"exttimestamp", strAttr("2023-03-31T15:12:00Z"),
			"extbinary", strAttr("TWE="))
	}
	return map[string][]*pb.CloudEvent{
		"minimal":                   {minimal()},
		"allCore":                   {allCore()},
		"minimalWithTime":           {withAttrs(minimalEvent("minimalWithTime"), AttrTime, tsAttr(t, "2018-04-05T17:31:00Z"))},
		"minimalWithRelativeSource": {{Id: "minimalWithRelativeSource", Source: "#fragment", SpecVersion: "1.0", Type: "io.cloudevents.test"}},
		"simpleTextData":            {withText(withAttrs(minimalEvent("simpleTextData"), AttrDataContentType, strAttr("text/plain")), "Simple text")},
		"allExtensionTypes":         {allExtensionTypes()},
		// Batches.
		"empty":                       {},
		"minimal2":                    {minimal(), minimal()},
		"minimalAndAllCore":           {minimal(), allCore()},
		"minimalAndAllExtensionTypes": {minimal(), allExtensionTypes()},
	}
}

// conformanceInvalid says which error each invalid case must produce. Every
// invalid case in the files must be listed, so new upstream cases fail
// loudly until they are classified.
var conformanceInvalid = map[string]wantErr{
	"invalidNoSpecVersion":             {ErrMissingAttribute, "specversion", -1},
	"invalidNoId":                      {ErrMissingAttribute, "id", -1},
	"invalidNoType":                    {ErrMissingAttribute, "type", -1},
	"invalidNoSource":                  {ErrMissingAttribute, "source", -1},
	"invalidTimeGarbage":               {ErrInvalidAttribute, "time", -1},
	"invalidTimeToMinute":              {ErrInvalidAttribute, "time", -1},
	"invalidTimeOffsetX":               {ErrInvalidAttribute, "time", -1},
	"invalidTimeOffsetOutOfRange":      {ErrInvalidAttribute, "time", -1},
	"invalidTimeOffsetNonInteger":      {ErrInvalidAttribute, "time", -1},
	"invalidTimeOffsetHourOnly":        {ErrInvalidAttribute, "time", -1},
	"invalidEmptyId":                   {ErrInvalidAttribute, "id", -1},
	"invalidEmptyType":                 {ErrInvalidAttribute, "type", -1},
	"invalidEmptySource":               {ErrInvalidAttribute, "source", -1},
	"invalidEmptySpecVersion":          {ErrInvalidAttribute, "specversion", -1},
	"invalidUnknownSpecVersion":        {ErrInvalidAttribute, "specversion", -1},
	"invalidNonRfc2046DataContentType": {ErrInvalidAttribute, "datacontenttype", -1},
	"invalidEmptyDataContentType":      {ErrInvalidAttribute, "datacontenttype", -1},
	"invalidEmptyDataSchema":           {ErrInvalidAttribute, "dataschema", -1},
	"invalidEmptySubject":              {ErrInvalidAttribute, "subject", -1},
	"invalidNumericId":                 {ErrInvalidAttribute, "id", -1},
	"invalidObjectId":                  {ErrInvalidAttribute, "id", -1},
	"invalidCapitalizedExtension":      {ErrInvalidAttribute, "MyExtension", -1},
	"invalidPunctuatedExtension":       {ErrInvalidAttribute, "my.extension", -1},
	"invalidNonIntegerExtensionValue":  {ErrInvalidAttribute, "my.extension", -1},
	"invalidBothDataAndDataBase64":     {ErrMalformed, "", -1},
	// Batches: the error names the offending event.
	"invalidBatchMixedSpecVersions":           {ErrInvalidAttribute, "specversion", 1},
	"invalidBatchContainingInvalidCloudEvent": {ErrMissingAttribute, "id", 0},
	"invalidBatchContainingNonObject":         {ErrMalformed, "", 0},
}

func TestConformanceJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "conformance", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 4, "expected the 4 conformance files")
	samples := conformanceSamples(t)
	seen := map[string]bool{}
	total := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var f conformanceFile
		require.NoError(t, json.Unmarshal(raw, &f), file)
		require.NotEmpty(t, f.Tests, file)
		for _, tc := range f.Tests {
			total++
			typ := tc.TestType
			if typ == "" {
				typ = f.TestType
			}
			require.Falsef(t, seen[tc.ID], "duplicate test id %s", tc.ID)
			seen[tc.ID] = true
			t.Run(filepath.Base(file)+"/"+tc.ID, func(t *testing.T) {
				// Neither kind of optional case needs skipping: extension
				// values decode by JSON type, and no case needs
				// extension constraints.
				switch typ {
				case "ValidSingleEvent":
					require.NotEmpty(t, tc.Event)
					ev, err := DecodeStructured(tc.Event)
					require.NoError(t, err)
					require.NoError(t, Validate(ev))
					want, ok := samples[tc.SampleID]
					require.Truef(t, ok, "no golden sample %q", tc.SampleID)
					require.Len(t, want, 1)
					requireConformanceEqual(t, want[0], ev, tc.SampleExtensionAttributes)
					checkRoundTrips(t, ev)
					// The same body through the HTTP structured mode.
					evs, mode, err := ReadRequest(structuredRequest(tc.Event, MediaTypeStructuredJSON), Limits{})
					require.NoError(t, err)
					require.Equal(t, ModeStructured, mode)
					require.Len(t, evs, 1)
					requireEqualEvent(t, ev, evs[0])
				case "ValidBatch":
					require.NotEmpty(t, tc.Batch)
					evs, err := DecodeBatch(tc.Batch, 0)
					require.NoError(t, err)
					require.NotNil(t, evs)
					require.NoError(t, ValidateBatch(evs))
					want, ok := samples[tc.SampleID]
					require.Truef(t, ok, "no golden sample %q", tc.SampleID)
					require.Len(t, evs, len(want))
					for i := range want {
						requireConformanceEqual(t, want[i], evs[i], tc.SampleExtensionAttributes)
					}
					enc, err := EncodeBatch(evs)
					require.NoError(t, err)
					back, err := DecodeBatch(enc, 0)
					require.NoError(t, err)
					require.Len(t, back, len(evs))
					for i := range evs {
						requireEqualEvent(t, evs[i], back[i])
					}
					// The same body through the HTTP batched mode
					// (validBatchEmpty included: no events, no error).
					got, mode, err := ReadRequest(structuredRequest(tc.Batch, MediaTypeBatchJSON), Limits{})
					require.NoError(t, err)
					require.Equal(t, ModeBatch, mode)
					require.Len(t, got, len(evs))
					for i := range evs {
						requireEqualEvent(t, evs[i], got[i])
					}
				case "InvalidSingleEvent":
					require.NotEmpty(t, tc.Event)
					w, ok := conformanceInvalid[tc.ID]
					require.Truef(t, ok, "invalid case %s has no expected error", tc.ID)
					ev, err := DecodeStructured(tc.Event)
					require.Nil(t, ev)
					e := requireErr(t, err, w)
					t.Logf("refused: %v", e)
					_, _, err = ReadRequest(structuredRequest(tc.Event, MediaTypeStructuredJSON), Limits{})
					requireErr(t, err, w)
				case "InvalidBatch":
					require.NotEmpty(t, tc.Batch)
					w, ok := conformanceInvalid[tc.ID]
					require.Truef(t, ok, "invalid case %s has no expected error", tc.ID)
					evs, err := DecodeBatch(tc.Batch, 0)
					require.Nil(t, evs)
					e := requireErr(t, err, w)
					t.Logf("refused: %v", e)
					_, _, err = ReadRequest(structuredRequest(tc.Batch, MediaTypeBatchJSON), Limits{})
					requireErr(t, err, w)
				default:
					t.Fatalf("unknown test type %q", typ)
				}
			})
		}
	}
	require.Equal(t, len(seen), total)
	for id := range conformanceInvalid {
		require.Truef(t, seen[id], "expected invalid case %s not found in the files", id)
	}
}

// sharedConformance finds the project's conformance folder: shared/ sits
// beside the repository's checkout in the project's work area and in CI (a
// worktree may be a level deeper), so it is looked for in this package's
// folder and its parents. "" when there is none.
func sharedConformance() string {
	dir := "."
	for range 6 {
		p := filepath.Join(dir, "shared", "conformance", "cloudevents-json")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		dir = filepath.Join(dir, "..")
	}
	return ""
}

// TestConformanceCopyIsCurrent checks that testdata/conformance holds every
// file of the shared conformance folder, byte for byte, so that
// TestConformanceJSON runs every case there. A checkout without the shared
// folder beside it skips.
func TestConformanceCopyIsCurrent(t *testing.T) {
	dir := sharedConformance()
	if dir == "" {
		t.Skip("no shared conformance folder beside this checkout")
	}
	shared, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	require.NotEmpty(t, shared, dir)
	for _, src := range shared {
		want, err := os.ReadFile(src)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("testdata", "conformance", filepath.Base(src)))
		require.NoErrorf(t, err, "%s is not copied into testdata/conformance", filepath.Base(src))
		require.Truef(t, bytes.Equal(want, got), "testdata/conformance/%s differs from %s: copy it again", filepath.Base(src), src)
	}
}

// requireConformanceEqual compares a decoded event with a golden sample.
// For the sample-extension cases (typed extensions the JSON format cannot
// infer) it also checks that every attribute has the sample's canonical
// string form.
func requireConformanceEqual(t *testing.T, want, got *pb.CloudEvent, sampleExt bool) {
	t.Helper()
	requireEqualEvent(t, want, got)
	if sampleExt {
		for name := range want.GetAttributes() {
			w, _ := Attribute(want, name)
			g, ok := Attribute(got, name)
			require.True(t, ok, name)
			require.Equal(t, w, g, name)
		}
	}
}

// structuredRequest builds a POST with body and content type.
func structuredRequest(body []byte, ct string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", ct)
	return r
}

// checkRoundTrips checks that ev survives the JSON format and the HTTP
// binary mode unchanged, and marshals as protobuf.
func checkRoundTrips(t testing.TB, ev *pb.CloudEvent) {
	t.Helper()
	_, err := proto.Marshal(ev)
	require.NoError(t, err)

	enc, err := EncodeStructured(ev)
	require.NoError(t, err)
	back, err := DecodeStructured(enc)
	require.NoErrorf(t, err, "decoding %s", enc)
	requireEqualEvent(t, jsonFormatView(ev), back)
	require.Equal(t, string(Data(ev)), string(Data(back)), "data must be byte-exact")

	r := httptest.NewRequest(http.MethodPost, "/", nil)
	body := WriteBinary(ev, r.Header)
	r.Body = http.NoBody
	if body != nil {
		r.Body = readCloser{bytes.NewReader(body)}
	}
	r.ContentLength = int64(len(body))
	evs, mode, err := ReadRequest(r, Limits{})
	require.NoError(t, err)
	require.Equal(t, ModeBinary, mode)
	require.Len(t, evs, 1)
	if _, has := ev.GetAttributes()[AttrDataContentType]; !has {
		if text, ok := ev.GetData().(*pb.CloudEvent_TextData); ok && isJSONValue([]byte(text.TextData)) {
			// Binary mode makes the implied application/json explicit.
			want := proto.Clone(ev).(*pb.CloudEvent)
			withAttrs(want, AttrDataContentType, strAttr("application/json"))
			requireEqualEvent(t, want, evs[0])
			return
		}
	}
	requireEqualEvent(t, binaryModeView(ev), evs[0])
	require.Equal(t, string(Data(ev)), string(Data(evs[0])), "data must be byte-exact")
}

// jsonFormatView is what an event looks like after the JSON format: text
// data the format cannot carry byte for byte in a "data" member (JSON-typed
// text that is not exactly one JSON value, such as a binary-mode body with
// whitespace around the value) travels as data_base64 and comes back as
// binary_data, with the same bytes.
func jsonFormatView(ev *pb.CloudEvent) *pb.CloudEvent {
	text, ok := ev.GetData().(*pb.CloudEvent_TextData)
	if !ok {
		return ev
	}
	ct, hasCT := Attribute(ev, AttrDataContentType)
	if (hasCT && !isJSONMediaType(ct)) || isJSONValue([]byte(text.TextData)) {
		return ev
	}
	out := proto.Clone(ev).(*pb.CloudEvent)
	out.Data = &pb.CloudEvent_BinaryData{BinaryData: []byte(text.TextData)}
	return out
}

// binaryModeView is what an event looks like after the HTTP binary mode:
// extension values become strings (header values carry no type), and the
// data sits where ReadRequest puts a body of that content type (text_data
// for JSON and text/* content, binary_data otherwise).
func binaryModeView(ev *pb.CloudEvent) *pb.CloudEvent {
	out := proto.Clone(ev).(*pb.CloudEvent)
	if data := Data(ev); len(data) > 0 {
		ct, _ := Attribute(ev, AttrDataContentType)
		isJSON := isJSONMediaType(ct)
		if (isJSON && isJSONValue(trimJSONSpace(data))) || (!isJSON && isTextMediaType(ct) && utf8.Valid(data)) {
			out.Data = &pb.CloudEvent_TextData{TextData: string(data)}
		} else {
			out.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
		}
	}
	for name, v := range out.GetAttributes() {
		switch name {
		case AttrTime, AttrDataSchema, AttrDataContentType, AttrSubject:
			continue
		}
		s, _ := AttributeValueString(v)
		out.Attributes[name] = strAttr(s)
	}
	return out
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
