// Package webhook is the `webhook` source: JSON POSTed to
// /webhooks/{source-name} on Switchyard's HTTP listener is wrapped into
// CloudEvents. Every request must be signed (Standard Webhooks, GitHub,
// Stripe or a plain HMAC of the body) unless the source says `insecure:
// true`. The POST is answered only once the event is durable (202), so a
// sender's own retries give at-least-once delivery; a copy of a request
// already stored, reaching any instance, is answered 200 and not stored
// again; a bad or stale signature is 401 and nothing is stored.
package webhook

import (
	"time"

	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldType         = "type"
	fieldSource       = "source"
	fieldScheme       = "scheme"
	fieldSecret       = "secret"
	fieldInsecure     = "insecure"
	fieldTolerance    = "tolerance"
	fieldDedupWindow  = "dedup_window"
	fieldSigHeader    = "signature_header"
	fieldAlgorithm    = "algorithm"
	fieldSigPrefix    = "signature_prefix"
	fieldIDHeader     = "id_header"
	fieldSubjectHdr   = "subject_header"
	fieldContentTypes = "content_types"
	fieldMaxBodyBytes = "max_body_bytes"
	fieldTimeout      = "timeout"
)

// Defaults of the fields that other code compares with.
const (
	DefaultScheme      = schemeHMAC
	DefaultTolerance   = 5 * time.Minute
	DefaultDedupWindow = 10 * time.Minute
	// The hmac scheme's defaults are GitHub's header and format, as before
	// schemes existed.
	DefaultSignatureHeader = hdrGitHubSignature
	DefaultAlgorithm       = "sha256"
	DefaultSignaturePrefix = "sha256="
	// DefaultHMACIDHeader is the hmac scheme's id header.
	DefaultHMACIDHeader = "X-Request-Id"
)

// defaultContentTypes are the media types accepted unless configured.
var defaultContentTypes = []string{"application/json"}

const description = `The request is answered 202 only once the event is durable in Switchyard, 503 (with
Retry-After) when it could not be stored, so the sender's retries make delivery at-least-once.
Bodies must be JSON, at most ` + "`max_body_bytes`" + ` (read before anything is verified).

**Every request is verified.** A source without a ` + "`secret`" + ` refuses to start unless it says
` + "`insecure: true`" + ` (logged as a warning when it starts: anyone who can reach the endpoint can then
inject events; before schemes existed, a source without a secret took unsigned requests
silently). The ` + "`scheme`" + ` says how a request is signed; signatures are compared in constant
time, signature headers are limited to 4 KiB and the id and subject headers to 1 KiB (else 431).
A refused request gets 401 (400 when a signature header is malformed) with a problem body saying
what is wrong with the request, never what was expected, and nothing is stored.

| scheme | headers | signed content | secret | signed id, timestamp |
|---|---|---|---|---|
| ` + "`standard`" + ` ([Standard Webhooks](https://www.standardwebhooks.com/)) | ` + "`webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature`: space-separated `v1,<base64>` entries, any of which may match (other versions are skipped)" + ` | HMAC-SHA256 of ` + "`id.timestamp.body`" + ` | ` + "`whsec_<base64 of the key>`" + `; a secret without the ` + "`whsec_`" + ` prefix is used as raw key bytes | the id (` + "`webhook-id`" + `, always the event id) and the timestamp, within ` + "`tolerance`" + ` |
| ` + "`github`" + ` | ` + "`X-Hub-Signature-256: sha256=<hex>`" + `; the id from ` + "`X-GitHub-Delivery`" + ` | HMAC-SHA256 of the body | the webhook's secret, as is | neither: the delivery id is unsigned, there is no timestamp |
| ` + "`stripe`" + ` | ` + "`Stripe-Signature: t=<Unix seconds>,v1=<hex>[,v1=<hex>…]`" + ` (other keys such as ` + "`v0`" + ` are skipped) | HMAC-SHA256 of ` + "`t.body`" + ` | the endpoint's ` + "`whsec_…`" + ` secret, used whole as the key | the timestamp, within ` + "`tolerance`" + `; the id is the body's SHA-256 unless ` + "`id_header`" + ` names an (unsigned) header |
| ` + "`hmac`" + ` (the default) | ` + "`signature_header`" + `: ` + "`signature_prefix`" + ` + hex | HMAC (` + "`algorithm`" + `) of the body | as is | neither: ` + "`id_header`" + ` is unsigned, there is no timestamp |

No scheme signs the subject header: with ` + "`subject_header`" + ` set, a sender who can replay a signed
body can give it any subject. Where the delivery id is unsigned, a captured request can be sent
again under a new id and is then stored again: prefer ` + "`standard`" + ` when the sender offers it.

**Replays and retries.** A request is stored once per delivery id and body, across every instance
sharing the Redis: a copy arriving after it was stored is answered 200 (` + "`{\"id\":…,\"duplicate\":true}`" + `)
and not stored again, for ` + "`dedup_window`" + ` and, with ` + "`standard`" + ` and ` + "`stripe`" + `, at least as long as its
timestamp is accepted (so replaying a captured request stores nothing). A copy arriving while the
first is being stored gets 503, so its sender retries later. A request whose timestamp is further
than ` + "`tolerance`" + ` from the server's clock, either way, is refused with 401.

**Content type.** Only the media types in ` + "`content_types`" + ` are accepted, else 415. Browsers post
` + "`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`" + ` or no content type at
all to any site without asking it first (a form, a no-cors fetch); refusing them keeps a web page a
user visits from posting to an endpoint it can reach. Configure GitHub webhooks with content type
` + "`application/json`" + `.`

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:        "webhook",
		Summary:     "Receives signed JSON webhooks (Standard Webhooks, GitHub, Stripe, HMAC) at POST /webhooks/{source-name} and wraps each into a CloudEvent.",
		Description: description,
		Fields: []connectors.Field{
			{Name: fieldType, Type: connectors.TypeString, Default: "com.switchyard.webhook", Doc: "CloudEvent type of the wrapped events."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source; default /webhooks/{source-name}.", Example: "https://github.com/acme/shop"},
			{Name: fieldScheme, Type: connectors.TypeString, Default: DefaultScheme, Doc: "How requests are signed: standard (Standard Webhooks), github, stripe or hmac (see the table above).", Example: schemeGitHub},
			{Name: fieldSecret, Type: connectors.TypeString, Secret: true, Doc: "Signing secret, required unless insecure is true; its format depends on the scheme (see above).", Example: "${WEBHOOK_SECRET}"},
			{Name: fieldInsecure, Type: connectors.TypeBool, Default: false, Doc: "Accept unsigned requests from anyone who can reach the endpoint (only without a secret); logged as a warning at start."},
			{Name: fieldTolerance, Type: connectors.TypeDuration, Default: DefaultTolerance.String(), Doc: "standard and stripe: how far a request's signed timestamp may be from the server's clock, either way, in whole seconds."},
			{Name: fieldDedupWindow, Type: connectors.TypeDuration, Default: DefaultDedupWindow.String(), Doc: "How long a stored request is remembered, so that a copy (a retry, a replay) with the same delivery id and body is answered 200 and not stored again; with standard and stripe never shorter than the time its timestamp is accepted."},
			{Name: fieldSigHeader, Type: connectors.TypeString, Default: DefaultSignatureHeader, Doc: "hmac only: the header carrying the signature."},
			{Name: fieldAlgorithm, Type: connectors.TypeString, Default: DefaultAlgorithm, Doc: "hmac only: the HMAC hash, sha1, sha256 or sha512."},
			{Name: fieldSigPrefix, Type: connectors.TypeString, Default: DefaultSignaturePrefix, Doc: "hmac only: the prefix before the hex digest in the header (\"\" for none)."},
			{Name: fieldIDHeader, Type: connectors.TypeString, Doc: "The header holding the sender's delivery id, which becomes the event id: by default X-Request-Id (hmac), X-GitHub-Delivery (github), none (stripe); not allowed with standard, whose id is the signed webhook-id. Unsigned in every scheme that allows it. When the request has no such header, the id is the hex SHA-256 of the body, so a resent body keeps its id."},
			{Name: fieldSubjectHdr, Type: connectors.TypeString, Doc: "Header whose value becomes the CloudEvent subject (unsigned in every scheme).", Example: "X-GitHub-Event"},
			{Name: fieldContentTypes, Type: connectors.TypeStringList, Default: defaultContentTypes, Doc: "Media types accepted (parameters such as charset are ignored); others, and requests without a Content-Type, get 415. `*/*` accepts anything, which lets browsers post cross-site."},
			{Name: fieldMaxBodyBytes, Type: connectors.TypeInt, Default: 1 << 20, Doc: "Largest accepted body; larger ones get 413."},
			{Name: fieldTimeout, Type: connectors.TypeDuration, Default: "30s", Doc: "How long a request waits for its event to be taken before 503. A request being stored holds its delivery id for twice this: copies arriving meanwhile get 503, and after a crash the sender's retries do until then."},
		},
		Emits: connectors.EventDoc{
			ID:              "standard: the signed `webhook-id`; otherwise the id header's value when configured and present, else the hex SHA-256 of the body",
			Source:          "the `source` field, default `/webhooks/{source-name}`",
			Type:            "the `type` field",
			Subject:         "the subject header's value, when configured and present (unsigned)",
			Time:            "when the request arrived",
			DataContentType: "`application/json`",
			Data:            "the request body, byte for byte",
		},
		Confirms: connectors.ConfirmsCaller,
		Loses:    "requests answered 202 whose events were not yet delivered: the sender considers them done and does not send them again",
		New:      New,
	})
}
