// Package redisstreams is the `redis_streams` target: each event becomes
// one entry of a Redis stream (XADD), in the field layout the
// `redis_streams` source reads back as a CloudEvent: a field `ce_<name>`
// per context attribute (canonical string form), `content-type` for
// datacontenttype and `data` for the data, byte for byte. The event counts
// as delivered once Redis answered the XADD with the entry's id.
//
// # Built on watermill-redisstream
//
// The publisher is watermill-redisstream's (v1.4.5) with its own
// Marshaller: the Watermill message carries the entry's fields as metadata
// and the data as payload, and the marshaller writes them as they are,
// without Watermill's uuid and msgpack metadata fields. Its Publish is one
// XADD under the message's context, which is the attempt's, and returns the
// XADD's error, so nothing is left to the native client. The go-redis
// client under it dials through the egress guard (its Dialer), with TLS for
// rediss:// URLs, and its context deadlines are on.
package redisstreams

import (
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/targets"
)

// Kind names the target in triggers.
const Kind = "redis_streams"

// Field names.
const (
	fieldURL            = "url"
	fieldUser           = "user"
	fieldPasswordSecret = "password_secret"
	fieldStream         = "stream"
	fieldMaxLen         = "maxlen"
)

// Entry fields of the layout (the redis_streams source's binary mode).
const (
	attrPrefix       = "ce_"
	entryData        = "data"
	entryContentType = "content-type"
)

func init() {
	targets.MustRegister(targets.Spec{
		Kind:    Kind,
		Summary: "Appends each event to a Redis stream (XADD), one field per attribute; delivered once Redis answered with the entry id.",
		Description: `Any Redis 5+ reachable from the server, not only Switchyard's own. The stream is created by the
first XADD. With ` + "`maxlen`" + ` the stream is trimmed approximately (` + "`MAXLEN ~`" + `) as entries are added.
A retried attempt whose first XADD succeeded but whose answer was lost adds the event again: consumers that
must not see it twice deduplicate by ` + "`ce_source`" + ` and ` + "`ce_id`" + `.`,
		Fields: []connectors.Field{
			{Name: fieldURL, Type: connectors.TypeString, Default: "redis://127.0.0.1:6379/0", Doc: "Redis URL, `redis://host:port/db` or `rediss://` for TLS (the server's target CA, else the system roots), without credentials.", Example: "rediss://redis.internal:6380/0"},
			{Name: fieldUser, Type: connectors.TypeString, Doc: "ACL user (Redis 6+); empty for the default user."},
			{Name: fieldPasswordSecret, Type: connectors.TypeSecretName, Doc: "Secret holding the password (AUTH).", Example: "orders-redis-password"},
			{Name: fieldStream, Type: connectors.TypeString, Required: true, Doc: "Stream key the entries are added to.", Example: "orders"},
			{Name: fieldMaxLen, Type: connectors.TypeInt, Default: 0, Doc: "Trim the stream to about this many entries (`XADD MAXLEN ~`); 0 keeps every entry."},
		},
		Layout: `One stream entry per event, in the binary mode of the ` + "`redis_streams`" + ` source:

| entry field | holds |
|---|---|
| ` + "`ce_id`, `ce_source`, `ce_specversion`, `ce_type`" + ` | the required attributes |
| ` + "`ce_<name>`" + ` | every other attribute and extension (` + "`ce_subject`, `ce_time`, `ce_traceparent`" + `…) in its canonical string form (timestamps RFC 3339, booleans ` + "`true`/`false`" + `, binary base64) |
| ` + "`content-type`" + ` | datacontenttype, when the event has one |
| ` + "`data`" + ` | the data, byte for byte, when the event has data |`,
		ReadBack: "the `redis_streams` source",
		Confirms: "The XADD's reply (the new entry's id): Redis applied the write. Without persistence configured on that Redis (AOF or RDB), a restart of it loses the entry all the same.",
		Check:    check,
		Addresses: func(c targets.Config) []targets.Address {
			return []targets.Address{{Field: fieldURL, HostPort: hostPort(c.String(fieldURL))}}
		},
		Secure:  func(c targets.Config) bool { return scheme(c.String(fieldURL)) == "rediss" },
		Display: display,
		New:     New,
	})
}
