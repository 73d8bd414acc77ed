package cli

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-io/switchyard/cloudevent"
)

const (
	ev1 = `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"total":1}}`
	ev2 = `{"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}`
)

func TestDecodeEvents(t *testing.T) {
	cases := map[string]struct {
		in       string
		where    []string // of the events read
		problems []string // prefixes of the problems
	}{
		"one object":        {in: ev1, where: []string{"f:1"}},
		"pretty object":     {in: "\n{\n  \"specversion\": \"1.0\",\n  \"id\": \"1\",\n  \"source\": \"/s\",\n  \"type\": \"t\"\n}\n", where: []string{"f:2"}},
		"json lines":        {in: ev1 + "\n\n" + ev2 + "\n", where: []string{"f:1", "f:3"}},
		"batch array":       {in: "[\n" + ev1 + ",\n  " + ev2 + "\n]", where: []string{"f:2", "f:3"}},
		"arrays and lines":  {in: "[" + ev1 + "]\n" + ev2, where: []string{"f:1", "f:2"}},
		"byte order mark":   {in: "\xef\xbb\xbf" + ev1, where: []string{"f:1"}},
		"empty batch":       {in: "[]", problems: []string{"f: no events"}},
		"nothing":           {in: "  \n", problems: []string{"f: no events"}},
		"every bad event":   {in: ev1 + "\n" + `{"specversion":"1.0","id":"2","type":"t"}` + "\n" + ev2 + "\n" + `{"id":3}`, where: []string{"f:1", "f:3"}, problems: []string{`f:2: missing required attribute "source"`, `f:4: attribute "id": must be a JSON string`}},
		"not an object":     {in: ev1 + "\n\"x\"\n[1, " + ev2 + "]", where: []string{"f:1", "f:3"}, problems: []string{"f:2: want an event (a JSON object) or an array of events, got a string", "f:3: want an event (a JSON object), got a number"}},
		"nested array":      {in: "[[" + ev1 + "]]", problems: []string{"f:1: want an event (a JSON object), got an array"}},
		"syntax error":      {in: ev1 + "\n{\"id\": }\n" + ev2, where: []string{"f:1"}, problems: []string{"f:2: invalid JSON: invalid character '}'"}},
		"cut short":         {in: ev1 + "\n{\"id\": \"2\",", where: []string{"f:1"}, problems: []string{"f:2: invalid JSON: unexpected end of input"}},
		"duplicate members": {in: `{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`, problems: []string{`f:1: attribute "id": duplicate member`}},
		"invalid UTF-8":     {in: `{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"` + "\xff" + `"}`, problems: []string{"f:1: malformed event"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			evs, probs := decodeEvents("f", []byte(tc.in), 100)
			var where []string
			for _, e := range evs {
				where = append(where, e.where)
			}
			if strings.Join(where, " ") != strings.Join(tc.where, " ") {
				t.Errorf("events at %v, want %v", where, tc.where)
			}
			if len(probs) != len(tc.problems) {
				t.Fatalf("problems %q, want %q", probs, tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.HasPrefix(probs[i], p) {
					t.Errorf("problem %q, want it to start with %q", probs[i], p)
				}
			}
		})
	}
}

func TestDecodeEventsBounds(t *testing.T) {
	in := strings.Repeat(ev1+"\n", 5)
	evs, probs := decodeEvents("f", []byte(in), 3)
	if len(evs) != 3 || len(probs) != 1 || probs[0] != "f:4: more than 10000 events" {
		t.Fatalf("%d events, problems %q", len(evs), probs)
	}
	big := `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"` + strings.Repeat("x", cloudevent.DefaultMaxEventBytes) + `"}`
	_, probs = decodeEvents("f", []byte(big), 3)
	if len(probs) != 1 || !strings.Contains(probs[0], "the limit is") {
		t.Fatalf("problems %q", probs)
	}
	bad := strings.Repeat(`{"id":1}`+"\n", maxEventProblems+50)
	_, probs = decodeEvents("f", []byte(bad), maxInputEvents)
	if len(probs) != maxEventProblems+1 {
		t.Fatalf("%d problems, want the reading to stop past %d", len(probs), maxEventProblems)
	}
}

func TestReadEventFiles(t *testing.T) {
	a := writeFile(t, "a.json", ev1)
	b := writeFile(t, "b.jsonl", ev2+"\n"+`{"specversion":"1.0","id":"3","type":"t"}`+"\n{")
	evs, err := readEventFiles(strings.NewReader("["+ev2+"]"), []string{a, "-"})
	if err != nil || len(evs) != 2 || evs[0].where != a+":1" || evs[1].where != "<stdin>:1" {
		t.Fatalf("%v %v", evs, err)
	}
	_, err = readEventFiles(strings.NewReader(""), []string{a, b})
	want := "invalid events (2 problems):\n  " + b + `:2: missing required attribute "source"` + "\n  " + b + ":3: invalid JSON: unexpected end of input"
	if err == nil || err.Error() != want || ExitCode(err) != ExitInvalid {
		t.Fatalf("err:\n%v\nwant:\n%s", err, want)
	}
	if _, err := readEventFiles(strings.NewReader(ev1), []string{"-", "-"}); err == nil || ExitCode(err) != ExitInvalid {
		t.Fatalf("stdin twice: %v", err)
	}
	if _, err := readEventFiles(nil, []string{a + ".missing"}); err == nil || ExitCode(err) != ExitFailure {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzDecodeEvents: the events reader never panics, locates every problem
// in its input, returns only valid events, and reads back what the JSON
// event format writes.
func FuzzDecodeEvents(f *testing.F) {
	for _, seed := range []string{
		ev1, ev1 + "\n" + ev2, "[" + ev1 + "," + ev2 + "]", "[]", "", "\xef\xbb\xbf" + ev1,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE="}`,
		`{"id":`, `[{"id":1},"x",[],null]`, `{} {} {}`, "{\"a\":\"\xff\"}", `[[[[`, `]`, `{"x":{"y":[{"z":1}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		evs, probs := decodeEvents("f", data, 50)
		if len(evs) > 50 || len(probs) > maxEventProblems+1 {
			t.Fatalf("%d events, %d problems: over the bounds", len(evs), len(probs))
		}
		if len(evs) == 0 && len(probs) == 0 {
			t.Fatal("neither events nor problems")
		}
		for _, p := range probs {
			if !strings.HasPrefix(p, "f:") {
				t.Fatalf("problem not located: %q", p)
			}
		}
		for _, e := range evs {
			n, err := strconv.Atoi(strings.TrimPrefix(e.where, "f:"))
			if err != nil || n < 1 || n > lines {
				t.Fatalf("event at %q in an input of %d lines", e.where, lines)
			}
			if err := cloudevent.Validate(e.ev); err != nil {
				t.Fatalf("invalid event returned: %v", err)
			}
		}
		// What was read, written back one per line, reads back the same.
		var buf bytes.Buffer
		for _, e := range evs {
			b, err := cloudevent.EncodeStructured(e.ev)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		if len(evs) == 0 {
			return
		}
		again, probs := decodeEvents("f", buf.Bytes(), 50)
		if len(probs) != 0 || len(again) != len(evs) {
			t.Fatalf("re-read: %d events, problems %q", len(again), probs)
		}
		for i := range evs {
			if !proto.Equal(evs[i].ev, again[i].ev) || again[i].where != "f:"+strconv.Itoa(i+1) {
				t.Fatalf("event %d changed: %v then %v at %s", i, evs[i].ev, again[i].ev, again[i].where)
			}
		}
	})
}
