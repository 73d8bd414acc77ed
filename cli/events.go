package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"

	"github.com/switchyard-io/switchyard/cloudevent"
)

// Bounds of the events a command reads from files and standard input.
const (
	// maxEventsInputBytes bounds one events file (or standard input).
	maxEventsInputBytes = 64 << 20
	// maxInputEvents bounds the events read in all.
	maxInputEvents = 10_000
	// maxEventProblems bounds the problems reported for the events read.
	maxEventProblems = 100
)

// loadedEvent is one event read from an events file.
type loadedEvent struct {
	where string // "events.json:3": where its object starts
	ev    *pb.CloudEvent
}

// readEventFiles reads the events of each file ("-" is standard input,
// read at most once), in order. A file that cannot be read is an error;
// the problems of the events are collected, all of them (up to a bound),
// into one error of exit code [ExitInvalid].
func readEventFiles(stdin io.Reader, files []string) ([]loadedEvent, error) {
	var (
		out       []loadedEvent
		problems  []string
		stdinRead bool
	)
	for _, f := range files {
		if f == "-" {
			if stdinRead {
				return nil, invalidf("--event -: standard input can be read only once")
			}
			stdinRead = true
		}
		data, err := readBounded(stdin, f)
		if err != nil {
			return nil, err
		}
		evs, probs := decodeEvents(displayFile(f), data, maxInputEvents-len(out))
		out = append(out, evs...)
		problems = append(problems, probs...)
	}
	if len(problems) > maxEventProblems {
		problems = append(problems[:maxEventProblems], fmt.Sprintf("… and %d more", len(problems)-maxEventProblems))
	}
	switch {
	case len(problems) == 1:
		return nil, invalidf("invalid event: %s", problems[0])
	case len(problems) > 1:
		return nil, invalidf("invalid events (%d problems):\n  %s", len(problems), strings.Join(problems, "\n  "))
	case len(out) == 0:
		return nil, invalidf("no events in %s", strings.Join(displayFiles(files), ", "))
	}
	return out, nil
}

// readBounded reads file ("-": stdin) up to maxEventsInputBytes; more is
// an error of exit code [ExitInvalid].
func readBounded(stdin io.Reader, file string) ([]byte, error) {
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxEventsInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayFile(file), err)
	}
	if len(data) > maxEventsInputBytes {
		return nil, invalidf("%s: more than %d MiB of events", displayFile(file), maxEventsInputBytes>>20)
	}
	return data, nil
}

func displayFiles(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = displayFile(f)
	}
	return out
}

// decodeEvents reads the events of one input, named name in messages:
// JSON values one after another, each an event in the CloudEvents JSON
// format (structured mode) or an array of them (the batch format). That
// covers one event per file, pretty-printed or not, one per line (JSON
// Lines), and batches. Each event is decoded as the HTTP ingest decodes a
// structured event (cloudevent.DecodeStructured: strictly, and validated)
// and located by the line its object starts on. Every bad event is
// reported, as "name:line: problem"; a JSON syntax error ends the input.
// At most limit events are read; more is a problem.
func decodeEvents(name string, data []byte, limit int) (events []loadedEvent, problems []string) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	d := eventScanner{name: name, data: data, dec: json.NewDecoder(bytes.NewReader(data)), limit: limit}
	for d.more() {
		at := d.start()
		tok, err := d.dec.Token()
		if err != nil {
			d.syntax(err, at)
			break
		}
		switch tok {
		case json.Delim('{'):
			// Re-read the whole object from its start: the decoder
			// cannot put the token back.
			if !d.object(at, true) {
				return d.events, d.problems
			}
		case json.Delim('['):
			if !d.array() {
				return d.events, d.problems
			}
		default:
			d.fail(at, "want an event (a JSON object) or an array of events, got %s", describeToken(tok))
		}
	}
	if len(d.events) == 0 && len(d.problems) == 0 {
		d.problems = append(d.problems, name+": no events")
	}
	return d.events, d.problems
}

// eventScanner walks the JSON values of one input.
type eventScanner struct {
	name     string
	data     []byte
	dec      *json.Decoder
	limit    int
	events   []loadedEvent
	problems []string
	stopped  bool
}

// more reports whether a value follows.
func (d *eventScanner) more() bool {
	return !d.stopped && d.start() < int64(len(d.data))
}

// start returns the offset where the next value begins (past white space
// and separators).
func (d *eventScanner) start() int64 {
	off := d.dec.InputOffset()
	for off < int64(len(d.data)) && strings.IndexByte(" \t\r\n,", d.data[off]) >= 0 {
		off++
	}
	return off
}

// line returns the 1-based line of byte offset off.
func (d *eventScanner) line(off int64) int {
	off = min(max(off, 0), int64(len(d.data)))
	return bytes.Count(d.data[:off], []byte("\n")) + 1
}

func (d *eventScanner) fail(off int64, format string, a ...any) {
	d.problems = append(d.problems, d.name+":"+strconv.Itoa(d.line(off))+": "+fmt.Sprintf(format, a...))
	if len(d.problems) > maxEventProblems {
		d.stopped = true
	}
}

// syntax reports a JSON syntax error and stops the input.
func (d *eventScanner) syntax(err error, at int64) {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		at = se.Offset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = errors.New("unexpected end of input")
		at = int64(len(bytes.TrimRight(d.data, " \t\r\n")))
	}
	d.fail(at, "invalid JSON: %v", err)
	d.stopped = true
}

// object decodes the event object that starts at offset at. opened says
// its '{' was read as a token already; the object is then scanned to its
// end with the decoder and decoded from the input's bytes. It returns
// false when the input must stop.
func (d *eventScanner) object(at int64, opened bool) bool {
	var end int64
	if opened {
		if err := skipObject(d.dec); err != nil {
			d.syntax(err, at)
			return false
		}
		end = d.dec.InputOffset()
	} else {
		var raw json.RawMessage
		if err := d.dec.Decode(&raw); err != nil {
			d.syntax(err, at)
			return false
		}
		end = d.dec.InputOffset()
	}
	if len(d.events) >= d.limit {
		d.fail(at, "more than %d events", maxInputEvents)
		d.stopped = true
		return false
	}
	raw := d.data[at:end]
	if len(raw) > cloudevent.DefaultMaxEventBytes {
		d.fail(at, "the event is %d bytes long; the limit is %d", len(raw), cloudevent.DefaultMaxEventBytes)
		return true
	}
	ev, err := cloudevent.DecodeStructured(raw)
	if err != nil {
		d.fail(at, "%v", err)
		return true
	}
	d.events = append(d.events, loadedEvent{where: d.name + ":" + strconv.Itoa(d.line(at)), ev: ev})
	return true
}

// array decodes the events of an array whose '[' was just read.
func (d *eventScanner) array() bool {
	for d.dec.More() {
		if d.stopped {
			return false
		}
		at := d.start()
		if at < int64(len(d.data)) && d.data[at] == '{' {
			if !d.object(at, false) {
				return false
			}
			continue
		}
		var v json.RawMessage
		if err := d.dec.Decode(&v); err != nil {
			d.syntax(err, at)
			return false
		}
		d.fail(at, "want an event (a JSON object), got %s", describeJSON(v))
	}
	if _, err := d.dec.Token(); err != nil { // the closing ']'
		d.syntax(err, d.start())
		return false
	}
	return true
}

// skipObject reads the tokens of an object whose '{' was read, up to and
// including its '}'.
func skipObject(dec *json.Decoder) error {
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// describeToken names a JSON token that is not an object or array.
func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return "null"
	case json.Delim:
		return strconv.Quote(t.String())
	}
	return fmt.Sprintf("%v", tok)
}

// describeJSON names the type of a JSON value.
func describeJSON(v json.RawMessage) string {
	s := bytes.TrimSpace(v)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '[':
		return "an array (arrays of events do not nest)"
	case 't', 'f':
		return string(s)
	case 'n':
		return "null"
	}
	return "a number"
}
