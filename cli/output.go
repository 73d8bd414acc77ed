package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"
)

// Output formats accepted by the -o flag of the client commands.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFormat is the value of an -o/--output flag. It implements
// pflag.Value, so an unknown format is refused when the flags are parsed.
type outputFormat string

// parseOutputFormat returns the format named by s (case-insensitive; "yml"
// is accepted for yaml).
func parseOutputFormat(s string) (outputFormat, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case formatTable:
		return formatTable, nil
	case formatJSON:
		return formatJSON, nil
	case formatYAML, "yml":
		return formatYAML, nil
	}
	return "", fmt.Errorf("unknown output format %q: want table, json or yaml", s)
}

// String implements pflag.Value.
func (o *outputFormat) String() string { return string(*o) }

// Set implements pflag.Value.
func (o *outputFormat) Set(s string) error {
	f, err := parseOutputFormat(s)
	if err != nil {
		return err
	}
	*o = f
	return nil
}

// Type implements pflag.Value.
func (o *outputFormat) Type() string { return "format" }

// outputFlag adds -o/--output (table, json or yaml; default table) to cmd.
func outputFlag(cmd *cobra.Command, dst *outputFormat) {
	*dst = formatTable
	cmd.Flags().VarP(dst, "output", "o", "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{formatTable, formatJSON, formatYAML}, cobra.ShellCompDirectiveNoFileComp))
}

// writeJSON writes v as indented JSON followed by a newline, without the
// HTML escaping of encoding/json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML writes v as YAML (through its JSON form, so json tags and
// MarshalJSON methods apply).
func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// table renders aligned columns with text/tabwriter.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table on w with the given column headers.
func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	t.row(headers...)
	return t
}

// row adds one row; tabs and line breaks inside cells become spaces so they
// cannot break the layout.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			_, _ = io.WriteString(t.tw, "\t")
		}
		_, _ = io.WriteString(t.tw, cellReplacer.Replace(c))
	}
	_, _ = io.WriteString(t.tw, "\n")
}

var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// flush writes the table out.
func (t *table) flush() error { return t.tw.Flush() }

// shortDuration renders d compactly for tables, kubectl style: "850ms",
// "42s", "5m3s", "3h12m", "4d5h". It renders 0 as "0s".
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		m, s := int(d.Minutes()), int(d.Seconds())%60
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// codeNames are the canonical names of the gRPC status codes.
var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// codeName returns the canonical name of c ("INVALID_ARGUMENT"), or its
// number for a code outside the catalogue.
func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE(%d)", uint32(c))
}

// parseCode reads a gRPC status code given by name, case-insensitive, with
// or without a "CODE_"/"codes." prefix or underscores ("INVALID_ARGUMENT",
// "invalid-argument", "InvalidArgument", "canceled"), or by number ("3").
func parseCode(s string) (codes.Code, error) {
	norm := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.ParseUint(norm, 10, 32); err == nil {
		if _, ok := codeNames[codes.Code(n)]; !ok {
			return 0, invalidf("unknown gRPC code %s: want 0 to 16", s)
		}
		return codes.Code(n), nil
	}
	key := strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.TrimPrefix(norm, "CODES."))
	if key == "CANCELED" {
		key = "CANCELLED"
	}
	for c, name := range codeNames {
		if strings.ReplaceAll(name, "_", "") == key {
			return c, nil
		}
	}
	return 0, invalidf("unknown gRPC code %q: want a name such as UNAVAILABLE or INVALID_ARGUMENT, or a number", s)
}

// grpcStatus returns the gRPC status carried by err, looking through the
// wrapping of the sdk's typed errors, and whether there was one.
func grpcStatus(err error) (*status.Status, bool) {
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) {
		if st := gs.GRPCStatus(); st != nil {
			return st, true
		}
	}
	return nil, false
}

// serverError turns the error of an API call into a readable error: the
// status code and message on the first line, then one line per
// google.rpc.BadRequest field violation ("  field: description"). Errors
// without a status are returned unchanged. what, when not empty, prefixes
// the first line (e.g. "trigger/orders").
func serverError(what string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := grpcStatus(err)
	if !ok {
		if what == "" {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	var b strings.Builder
	if what != "" {
		b.WriteString(what)
		b.WriteString(": ")
	}
	b.WriteString(codeName(st.Code()))
	if msg := st.Message(); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	writeViolations(&b, st)
	return &statusError{msg: b.String(), err: err}
}

// writeViolations appends one line per field violation of st, unless the
// message already is the only one ("field: description").
func writeViolations(b *strings.Builder, st *status.Status) {
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		if fvs := br.GetFieldViolations(); len(fvs) == 1 && st.Message() == fvs[0].GetField()+": "+fvs[0].GetDescription() {
			continue
		}
		for _, fv := range br.GetFieldViolations() {
			b.WriteString("\n  ")
			if f := fv.GetField(); f != "" {
				b.WriteString(f)
				b.WriteString(": ")
			}
			b.WriteString(fv.GetDescription())
		}
	}
}

// statusError is a server error rendered by serverError; it unwraps to the
// original error, so errors.As finds the sdk's typed errors.
type statusError struct {
	msg string
	err error
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.err }
