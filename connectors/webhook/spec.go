// Package webhook is the `webhook` source: raw JSON POSTed to
// /webhooks/{source-name} on Switchyard's HTTP listener is wrapped into
// CloudEvents, with optional HMAC signature verification. The POST is
// answered only once the event is durable (202), so a sender's own retries
// give at-least-once delivery; a bad signature is 401 and nothing is stored.
package webhook

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldType         = "type"
	fieldSource       = "source"
	fieldSecret       = "secret"
	fieldSigHeader    = "signature_header"
	fieldAlgorithm    = "algorithm"
	fieldSigPrefix    = "signature_prefix"
	fieldIDHeader     = "id_header"
	fieldSubjectHdr   = "subject_header"
	fieldMaxBodyBytes = "max_body_bytes"
	fieldTimeout      = "timeout"
)

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "webhook",
		Summary: "Receives raw JSON webhooks at POST /webhooks/{source-name} and wraps each into a CloudEvent.",
		Description: `The request is answered 202 only once the event is durable in Switchyard, 503 (with
Retry-After) when it could not be stored, so the sender's retries make delivery at-least-once.
With a secret, the body's HMAC must match the signature header (constant-time comparison);
otherwise the answer is 401 and nothing is stored. Bodies must be JSON.`,
		Fields: []connectors.Field{
			{Name: fieldType, Type: connectors.TypeString, Default: "com.switchyard.webhook", Doc: "CloudEvent type of the wrapped events."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source; default /webhooks/{source-name}.", Example: "https://github.com/acme/shop"},
			{Name: fieldSecret, Type: connectors.TypeString, Secret: true, Doc: "HMAC secret; when set, every request must carry a valid signature.", Example: "${WEBHOOK_SECRET}"},
			{Name: fieldSigHeader, Type: connectors.TypeString, Default: "X-Hub-Signature-256", Doc: "Header carrying the hex signature."},
			{Name: fieldAlgorithm, Type: connectors.TypeString, Default: "sha256", Doc: "HMAC hash: sha1, sha256 or sha512."},
			{Name: fieldSigPrefix, Type: connectors.TypeString, Default: "sha256=", Doc: "Prefix before the hex digest in the header (\"\" for none)."},
			{Name: fieldIDHeader, Type: connectors.TypeString, Default: "X-Request-Id", Doc: "Header holding the sender's delivery id (e.g. X-GitHub-Delivery); without it the id is the SHA-256 of the body, so a resent body keeps its id."},
			{Name: fieldSubjectHdr, Type: connectors.TypeString, Doc: "Header whose value becomes the CloudEvent subject (e.g. X-GitHub-Event).", Example: "X-GitHub-Event"},
			{Name: fieldMaxBodyBytes, Type: connectors.TypeInt, Default: 1 << 20, Doc: "Largest accepted body; larger ones get 413."},
			{Name: fieldTimeout, Type: connectors.TypeDuration, Default: "30s", Doc: "How long a request waits for its event to be stored before 503."},
		},
		Emits: connectors.EventDoc{
			ID:              "the id header's value, else the hex SHA-256 of the body",
			Source:          "the `source` field, default `/webhooks/{source-name}`",
			Type:            "the `type` field",
			Subject:         "the subject header's value, when configured and present",
			Time:            "when the request arrived",
			DataContentType: "`application/json`",
			Data:            "the request body, byte for byte",
		},
		New: New,
	})
}
