package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/sdk"
)

func init() {
	extraCommands = append(extraCommands, newPublishCmd)
}

// publishOptions are the flags of the publish command.
type publishOptions struct {
	client      clientOptions
	typ         string
	source      string
	id          string
	subject     string
	timeStr     string
	dataSchema  string
	data        string
	dataSet     bool // --data was given, possibly empty
	dataFile    string
	contentType string
	exts        []string
}

func newPublishCmd() *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish --type TYPE --source SOURCE [--data DATA | --data-file FILE]",
		Short: "Publish one CloudEvent",
		Long: `Publish one CloudEvent through the gRPC API and wait until it is stored for
every trigger it matches. Prints "published ID".

Without --content-type, data that is valid JSON is sent as application/json,
other UTF-8 text as text/plain and anything else as application/octet-stream.
Extensions (--ext name=value, repeatable) are sent as strings.

Exit status (as for every command, see switchyard --help): 0 on success, 2
when the event is invalid (every violation is printed), 3 when pushed back
because a matching trigger has reached its max_queue (the trigger, its
undelivered events and the delay the server asked for are printed), 1 for
other errors.`,
		Example: `  switchyard publish --type com.example.order.created --source /shop --data '{"id":42}'
  switchyard publish --type com.example.image --source /cam --data-file cat.png --content-type image/png
  echo hello | switchyard publish --type t --source s --data-file - --ext tenant=acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.dataSet = cmd.Flags().Changed("data")
			ev, err := o.event(cmd.InOrStdin())
			if err != nil {
				return err
			}
			err = o.client.withClient(func(c *sdk.Client) error {
				return c.Publish(cmd.Context(), ev)
			})
			if err != nil {
				return publishError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s\n", ev.ID())
			return nil
		},
	}
	clientFlags(cmd, &o.client)
	f := cmd.Flags()
	f.StringVar(&o.typ, "type", "", "event type (required)")
	f.StringVar(&o.source, "source", "", "event source, a URI reference (required)")
	f.StringVar(&o.id, "id", "", "event id (default a random UUID)")
	f.StringVar(&o.subject, "subject", "", "event subject")
	f.StringVar(&o.timeStr, "time", "", `event time, RFC 3339 or "now" (default none)`)
	f.StringVar(&o.dataSchema, "dataschema", "", "URI of the data's schema")
	f.StringVar(&o.data, "data", "", "event data")
	f.StringVar(&o.dataFile, "data-file", "", "file holding the event data, byte for byte (- for standard input)")
	f.StringVar(&o.contentType, "content-type", "", "datacontenttype (default application/json for JSON data, else text/plain, or application/octet-stream for non-UTF-8 data)")
	f.StringArrayVar(&o.exts, "ext", nil, "extension attribute as name=value; repeatable")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("source")
	cmd.MarkFlagsMutuallyExclusive("data", "data-file")
	return cmd
}

// reservedAttributes cannot be set with --ext.
var reservedAttributes = map[string]string{
	"id": "--id", "source": "--source", "specversion": "", "type": "--type",
	"subject": "--subject", "time": "--time", "datacontenttype": "--content-type",
	"dataschema": "--dataschema", "data": "--data", "data_base64": "--data",
}

// parseExtensions reads --ext values: name=value pairs, the name a valid
// CloudEvents attribute name (a-z, 0-9) that is not a core attribute, each
// name given once. The value may be empty and may contain '='.
func parseExtensions(kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, invalidf("--ext %q: want name=value", kv)
		}
		if name == "" {
			return nil, invalidf("--ext %q: empty name", kv)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
				return nil, invalidf("--ext %q: name %q must consist of lower-case letters a-z and digits 0-9 only", kv, name)
			}
		}
		if flag, reserved := reservedAttributes[name]; reserved {
			if flag == "" {
				return nil, invalidf("--ext %q: %q is a core attribute", kv, name)
			}
			return nil, invalidf("--ext %q: %q is a core attribute, use %s", kv, name, flag)
		}
		if _, dup := out[name]; dup {
			return nil, invalidf("--ext %q: extension %q given twice", kv, name)
		}
		out[name] = value
	}
	return out, nil
}

// defaultContentType picks the datacontenttype of data when none is given.
func defaultContentType(data []byte) string {
	switch {
	case json.Valid(data):
		return "application/json"
	case utf8.Valid(data):
		return "text/plain"
	}
	return "application/octet-stream"
}

// event builds the event from the flags; stdin serves --data-file -.
func (o *publishOptions) event(stdin io.Reader) (event.Event, error) {
	exts, err := parseExtensions(o.exts)
	if err != nil {
		return event.Event{}, err
	}
	ev := event.New()
	id := o.id
	if id == "" {
		id = uuid.NewString()
	}
	ev.SetID(id)
	ev.SetType(o.typ)
	ev.SetSource(o.source)
	if o.subject != "" {
		ev.SetSubject(o.subject)
	}
	if o.dataSchema != "" {
		ev.SetDataSchema(o.dataSchema)
	}
	switch o.timeStr {
	case "":
	case "now":
		ev.SetTime(time.Now())
	default:
		t, err := time.Parse(time.RFC3339Nano, o.timeStr)
		if err != nil {
			return event.Event{}, invalidf("--time %q: want RFC 3339 (2006-01-02T15:04:05Z) or now", o.timeStr)
		}
		ev.SetTime(t)
	}
	for name, value := range exts {
		ev.SetExtension(name, value)
	}

	var data []byte
	hasData := false
	switch {
	case o.dataFile == "-":
		if data, err = io.ReadAll(stdin); err != nil {
			return event.Event{}, fmt.Errorf("--data-file -: %w", err)
		}
		hasData = true
	case o.dataFile != "":
		if data, err = os.ReadFile(o.dataFile); err != nil {
			return event.Event{}, fmt.Errorf("--data-file: %w", err)
		}
		hasData = true
	case o.dataSet || o.data != "":
		data, hasData = []byte(o.data), true
	}
	ct := o.contentType
	if ct == "" && hasData {
		ct = defaultContentType(data)
	}
	if hasData {
		if data == nil {
			data = []byte{}
		}
		// []byte data is kept byte for byte, whatever the content type.
		if err := ev.SetData(ct, data); err != nil {
			return event.Event{}, fmt.Errorf("data: %w", err)
		}
	} else if ct != "" {
		ev.SetDataContentType(ct)
	}
	return ev, nil
}

// publishError renders a Publish error and picks its exit code.
func publishError(err error) error {
	var pe *sdk.PushbackError
	if errors.As(err, &pe) {
		var b strings.Builder
		b.WriteString("pushed back: ")
		if pe.Trigger != "" {
			fmt.Fprintf(&b, "trigger %q has reached its max_queue", pe.Trigger)
		} else {
			b.WriteString("a matching trigger has reached its max_queue")
		}
		if pe.RetryAfter > 0 {
			fmt.Fprintf(&b, "; retry after %v", pe.RetryAfter)
		}
		if st, ok := grpcStatus(err); ok && st.Message() != "" {
			fmt.Fprintf(&b, "\n  %s", st.Message())
		}
		return &ExitError{Code: ExitPushback, Err: &statusError{msg: b.String(), err: err}}
	}
	var ie *sdk.InvalidEventError
	if errors.As(err, &ie) {
		var b strings.Builder
		b.WriteString("invalid event")
		// The server's message, when the server refused it (client-side
		// refusals have no status of their own).
		if st, fromServer := grpcStatus(ie.Err); fromServer && st.Message() != "" {
			b.WriteString(": ")
			b.WriteString(st.Message())
		}
		for _, v := range ie.Violations {
			b.WriteString("\n  ")
			b.WriteString(v.String())
		}
		return &ExitError{Code: ExitInvalid, Err: &statusError{msg: b.String(), err: err}}
	}
	return serverError("", err)
}
