// Package schedule is the `schedule` source: it emits an event on each tick
// of a cron expression or a fixed interval, in a time zone, with optional
// static data.
//
// Every instance serving the source computes the same ticks (cron ticks
// are deterministic; interval ticks are aligned to the Unix epoch, not to
// a start time) and tries to publish each one through the runner's
// at-most-once publish (connectors.Message.Once, keyed by the source's
// name, the tick's time as the sequence number). The router writes the
// claim of the tick and its event in one atomic step
// (router.PublishOnce), so however many instances run, and whichever dies
// when, each tick is published once: a crash before the write leaves the
// tick to the others, a crash after it leaves nothing to redo.
//
// Catch-up policy: a source resumes after the last tick published under
// its name (read from the store on each connect). Ticks it missed (every
// instance down, Redis unreachable) are fired late, once each, in order,
// when they lie within `catch_up` of now; older ones are skipped and
// logged. On a first start (no tick recorded) the first tick is the next
// one after the start.
package schedule

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldCron        = "cron"
	fieldInterval    = "interval"
	fieldTimezone    = "timezone"
	fieldType        = "type"
	fieldSource      = "source"
	fieldSubject     = "subject"
	fieldData        = "data"
	fieldContentType = "data_content_type"
	fieldCatchUp     = "catch_up"
)

// DefaultType is the type of the events emitted, unless `type` says.
const DefaultType = "com.switchyard.schedule.tick"

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "schedule",
		Summary: "Emits an event on each tick of a cron expression or a fixed interval, once per tick across every instance.",
		Description: `Give either ` + "`cron`" + ` or ` + "`interval`" + `. A cron expression has five fields (minute hour
day-of-month month day-of-week) or six with seconds first, or a descriptor (` + "`@hourly`" + `, ` + "`@daily`" + `,
` + "`@weekly`" + `, ` + "`@monthly`" + `, ` + "`@yearly`" + `); it is read in ` + "`timezone`" + ` (an IANA name), or in the zone of a
` + "`CRON_TZ=Europe/Paris`" + ` prefix, so daylight-saving changes follow the local clock. An ` + "`interval`" + `
ticks at the multiples of its length since the Unix epoch, so every instance agrees on the ticks
(` + "`@every`" + ` is refused: it counts from each instance's start).

Every instance serving the source tries each tick; the claim of the tick and its event are written
in one atomic step, so exactly one instance publishes it, and a crash at any moment neither skips
nor doubles one. A source resumes after the last tick published under its name: ticks missed while
no instance could publish are fired late, once each and in order, when within ` + "`catch_up`" + ` of
now; older ones are skipped (and logged). A first start fires from the next tick on.
` + "`switchyard source list`" + ` shows the next tick (NEXT FIRE) and the last one fired here (POSITION).
Ticks use each instance's clock: keep the clocks synchronised (NTP).`,
		Fields: []connectors.Field{
			{Name: fieldCron, Type: connectors.TypeString, Doc: "Cron expression (5 fields, or 6 with seconds first, or a descriptor such as `@daily`), optionally prefixed with `CRON_TZ=<zone> `. Exclusive with `interval`.", Example: "0 9 * * MON-FRI"},
			{Name: fieldInterval, Type: connectors.TypeDuration, Doc: "Fixed interval (at least 1s, whole seconds), ticking at its multiples since the Unix epoch. Exclusive with `cron`.", Example: "30s"},
			{Name: fieldTimezone, Type: connectors.TypeString, Default: "UTC", Doc: "IANA time zone the cron expression is read in (`Local` is refused: instances must agree).", Example: "Europe/Paris"},
			{Name: fieldType, Type: connectors.TypeString, Default: DefaultType, Doc: "CloudEvent type of the events."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source; default `/switchyard/schedule/{name}`.", Example: "urn:billing:nightly"},
			{Name: fieldSubject, Type: connectors.TypeString, Doc: "CloudEvent subject, if any.", Example: "invoices"},
			{Name: fieldData, Type: connectors.TypeString, Doc: "Static data of every event (at most 64 KiB); JSON unless `data_content_type` says otherwise.", Example: `{"job": "close-day"}`},
			{Name: fieldContentType, Type: connectors.TypeString, Default: "application/json", Doc: "Content type of `data` (a JSON type requires valid JSON)."},
			{Name: fieldCatchUp, Type: connectors.TypeDuration, Default: "1m", Doc: "Missed ticks no older than this (plus a second of grace) are fired late, once each; older ones are skipped. 0 skips every tick missed by more than a second."},
		},
		Emits: connectors.EventDoc{
			ID:              "`{name}@{tick time, RFC 3339 in UTC}`, the same on every instance",
			Source:          "the `source` field, default `/switchyard/schedule/{name}`",
			Type:            "the `type` field, default `com.switchyard.schedule.tick`",
			Subject:         "the `subject` field, if set",
			Time:            "the tick's time (when it was due, not when it was published)",
			DataContentType: "`data_content_type` when `data` is set",
			Data:            "the `data` field, if set",
		},
		Confirms: connectors.ConfirmsCheckpoint,
		Loses:    "ticks published but not yet delivered, and the record of the last tick published: the next start is a first start, so ticks missed while down are not caught up",
		New:      New,
	})
}
