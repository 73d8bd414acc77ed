package server

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/router/trigger"
)

// FuzzDecodeToken feeds arbitrary page tokens to decodeToken: never a panic,
// INVALID_ARGUMENT for what it refuses, and what it accepts names a valid
// trigger and entry and encodes back to the same token.
func FuzzDecodeToken(f *testing.F) {
	f.Add(pageToken{"orders", "1764140000000-0"}.encode())
	f.Add(pageToken{"a}:x", "1-0"}.encode())
	f.Add(pageToken{"orders", "+"}.encode())
	f.Add("!")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeToken(s)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("refusal is %v", err)
			}
			return
		}
		if !trigger.ValidName(tok.trigger) || !entryIDRE.MatchString(tok.next) {
			t.Fatalf("accepted %q: %+v", s, tok)
		}
		if back := tok.encode(); back != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, tok, back)
		}
	})
}

// FuzzSplitID feeds arbitrary dead letter ids to splitID: never a panic,
// INVALID_ARGUMENT naming the field for what it refuses, and a valid trigger
// name and entry id for what it accepts.
func FuzzSplitID(f *testing.F) {
	f.Add("orders/1764140000000-0", "")
	f.Add("1-0", "orders")
	f.Add("a}:x/1-0", "")
	f.Add("orders/1-0", "other")
	f.Fuzz(func(t *testing.T, id, want string) {
		trig, entry, err := splitID("ids[0]", id, want)
		if err != nil {
			if fields := violationFields(err); status.Code(err) != codes.InvalidArgument || len(fields) != 1 || fields[0] != "ids[0]" {
				t.Fatalf("refusal of %q (trigger %q): %v", id, want, err)
			}
			return
		}
		if !trigger.ValidName(trig) || !entryIDRE.MatchString(entry) || (want != "" && trig != want) {
			t.Fatalf("accepted %q (trigger %q) as %q / %q", id, want, trig, entry)
		}
	})
}

func violationFields(err error) []string {
	st, _ := status.FromError(err)
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}
