// Package s3poll is the `s3` source: it polls a bucket of any S3-compatible
// store (AWS S3, MinIO, Ceph, R2, ...) and emits a CloudEvent for every
// object created, updated or deleted since the previous listing. The last
// listing is a durable checkpoint, so changes made while Switchyard was down
// are found by the next diff, and nothing unchanged is emitted again.
package s3poll

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldEndpoint     = "endpoint"
	fieldBucket       = "bucket"
	fieldPrefix       = "prefix"
	fieldAccessKey    = "access_key"
	fieldSecretKey    = "secret_key"
	fieldSessionToken = "session_token"
	fieldUseSSL       = "use_ssl"
	fieldRegion       = "region"
	fieldBucketLookup = "bucket_lookup"
	fieldPollInterval = "poll_interval"
	fieldEmitExisting = "emit_existing"
	fieldVersioned    = "versioned"
)

// Event types.
const (
	TypeCreated = "com.switchyard.s3.object.created"
	TypeUpdated = "com.switchyard.s3.object.updated"
	TypeDeleted = "com.switchyard.s3.object.deleted"
)

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "s3",
		Summary: "Polls an S3-compatible bucket and emits an event per object created, updated or deleted.",
		Description: `Every poll lists the bucket (under ` + "`prefix`" + `) and compares it with the previous listing, kept
as a durable checkpoint (compressed) in Switchyard's store: a new key is *created*, a changed ETag,
size, modification time or version is *updated*, a vanished key is *deleted*. The checkpoint moves
only once every event of a listing is durable (and every few seconds within a long one), so after a
crash or restart the next listing emits again exactly what was not yet stored — with the same ids —
and changes made while Switchyard was down are not lost. Changes that cancel out between two polls
(an object created and deleted again) are not seen; use ` + "`s3_notifications`" + ` when every
operation matters. Each poll lists the whole prefix: keep prefixes of very large buckets narrow or
the interval long.`,
		Fields: []connectors.Field{
			{Name: fieldEndpoint, Type: connectors.TypeString, Required: true, Doc: "Host and optional port of the S3 API; an `http://` or `https://` prefix sets `use_ssl`.", Example: "s3.eu-west-3.amazonaws.com"},
			{Name: fieldBucket, Type: connectors.TypeString, Required: true, Doc: "Bucket to watch.", Example: "invoices"},
			{Name: fieldPrefix, Type: connectors.TypeString, Doc: "Only watch keys starting with this prefix.", Example: "incoming/"},
			{Name: fieldAccessKey, Type: connectors.TypeString, Doc: "Access key id; leave access and secret key empty for anonymous access.", Example: "${S3_ACCESS_KEY}"},
			{Name: fieldSecretKey, Type: connectors.TypeString, Secret: true, Doc: "Secret access key.", Example: "${S3_SECRET_KEY}"},
			{Name: fieldSessionToken, Type: connectors.TypeString, Secret: true, Doc: "Session token of temporary credentials."},
			{Name: fieldUseSSL, Type: connectors.TypeBool, Default: true, Doc: "Use HTTPS."},
			{Name: fieldRegion, Type: connectors.TypeString, Doc: "Region of the bucket; looked up when empty.", Example: "eu-west-3"},
			{Name: fieldBucketLookup, Type: connectors.TypeString, Default: "auto", Doc: "Addressing style: `auto`, `path` (`host/bucket/key`, MinIO and most self-hosted stores) or `dns` (`bucket.host/key`)."},
			{Name: fieldPollInterval, Type: connectors.TypeDuration, Default: "10s", Doc: "Time between the starts of two listings (at least 100ms)."},
			{Name: fieldEmitExisting, Type: connectors.TypeBool, Default: true, Doc: "On the very first start (no checkpoint), emit a created event for every object already there; false takes the first listing as the baseline."},
			{Name: fieldVersioned, Type: connectors.TypeBool, Default: false, Doc: "List object versions (versioned buckets): `version_id` is filled, a delete marker counts as a deletion, and an older version becoming the latest again is an update."},
		},
		Emits: connectors.EventDoc{
			ID: "hex SHA-256 of the change kind, key, ETag, size, modification time and version id of the object version concerned " +
				"(for a deletion, the version last seen), so every listing yields the same id for the same change",
			Source:          "`s3://{bucket}`",
			Type:            "`com.switchyard.s3.object.created`, `com.switchyard.s3.object.updated` or `com.switchyard.s3.object.deleted`",
			Subject:         "the object key (percent-encoded where it holds characters CloudEvents strings forbid)",
			Time:            "the object's last modification (for a deletion: the delete marker's time when versioned, else when the deletion was noticed)",
			DataContentType: "`application/json`",
			Data:            "`{\"bucket\", \"key\", \"size\", \"etag\", \"last_modified\", \"version_id\"}` describing the object (for a deletion, as last seen); the content is not included",
		},
		Confirms: connectors.ConfirmsCheckpoint,
		Loses:    "changes accepted but not yet delivered, and the listing they were found in: the next start is a first start, which reports every object as created again (nothing with `emit_existing: false`), so updates and deletions not yet delivered are lost",
		New:      New,
	})
}
