// Package directory is the `directory` source: it watches a local directory
// (optionally its whole tree) and emits a CloudEvent when a file is
// created, modified or removed. Rapid successive writes are debounced into
// one event once the file settles. The set of files already reported
// (path → size and modification time) is a durable checkpoint, so after a
// restart a rescan reports exactly what changed while Switchyard was down.
package directory

import (
	"github.com/switchyard-io/switchyard/connectors"
)

// Field names.
const (
	fieldPath            = "path"
	fieldRecursive       = "recursive"
	fieldInclude         = "include"
	fieldExclude         = "exclude"
	fieldDebounce        = "debounce"
	fieldChecksum        = "checksum"
	fieldIncludeContent  = "include_content"
	fieldMaxContentBytes = "max_content_bytes"
	fieldEmitExisting    = "emit_existing"
	fieldRescanInterval  = "rescan_interval"
	fieldSource          = "source"
)

// Event types.
const (
	TypeCreated  = "com.switchyard.file.created"
	TypeModified = "com.switchyard.file.modified"
	TypeRemoved  = "com.switchyard.file.removed"
)

// maxContentLimit caps max_content_bytes: events are kept in Redis.
const maxContentLimit = 16 << 20

func init() {
	connectors.MustRegister(connectors.Spec{
		Kind:    "directory",
		Summary: "Watches a local directory and emits an event per file created, modified or removed.",
		Description: `Changes are noticed through the operating system's file notifications (inotify, kqueue, ...)
and confirmed by looking at the file: a path is reported once its events have stopped for ` + "`debounce`" + `,
so a file being written yields one event after it settles. A file whose size or modification time
differs from what was last reported is *modified*; a new path is *created*; a vanished one *removed*.
What was reported and stored is a durable checkpoint: after a restart (or a lost notification queue)
the directory is rescanned and compared with it, so nothing that changed meanwhile is lost and
unchanged files are not reported again. Only regular files (and symbolic links to them) are
reported. Patterns are globs (` + "`*`" + `, ` + "`?`" + `, ` + "`[a-z]`" + `, and ` + "`**`" + ` for any number of
directories); a pattern without ` + "`/`" + ` matches the file's base name, one with ` + "`/`" + ` the path relative to the
watched directory. A directory matched by an exclude pattern is neither watched nor scanned.`,
		Fields: []connectors.Field{
			{Name: fieldPath, Type: connectors.TypeString, Required: true, Doc: "Directory to watch.", Example: "/var/spool/invoices"},
			{Name: fieldRecursive, Type: connectors.TypeBool, Default: false, Doc: "Watch subdirectories too (new ones included)."},
			{Name: fieldInclude, Type: connectors.TypeStringList, Doc: "Only report files matching one of these patterns (default: every file).", Example: "[\"*.csv\", \"incoming/**/*.json\"]"},
			{Name: fieldExclude, Type: connectors.TypeStringList, Doc: "Never report files (nor enter directories) matching one of these patterns.", Example: "[\".*\", \"*.tmp\", \"node_modules\"]"},
			{Name: fieldDebounce, Type: connectors.TypeDuration, Default: "100ms", Doc: "How long a path must stay quiet before it is looked at and reported."},
			{Name: fieldChecksum, Type: connectors.TypeBool, Default: false, Doc: "Add the file's SHA-256 to the event (the file is read once per change)."},
			{Name: fieldIncludeContent, Type: connectors.TypeBool, Default: false, Doc: "Make the file's content the event's data (binary, content type guessed from the extension) for files up to `max_content_bytes`; the description moves to extensions."},
			{Name: fieldMaxContentBytes, Type: connectors.TypeInt, Default: 1 << 20, Doc: "Largest file whose content is included (at most 16 MiB); larger files get the JSON description."},
			{Name: fieldEmitExisting, Type: connectors.TypeBool, Default: true, Doc: "On the very first start (no checkpoint), report every file already there as created; false takes the first scan as the baseline."},
			{Name: fieldRescanInterval, Type: connectors.TypeDuration, Default: "10m", Doc: "Rescan the whole directory this often, to catch changes notifications missed (network file systems); 0 never."},
			{Name: fieldSource, Type: connectors.TypeString, Doc: "CloudEvent source; default `file://` + the absolute path of the directory.", Example: "urn:host42:invoices"},
		},
		Emits: connectors.EventDoc{
			ID:              "hex SHA-256 of the change kind, the relative path, the modification time (ns) and the size (for a removal, of the file as last reported), so a rescan yields the same id for the same change",
			Source:          "the `source` field, default `file://{absolute directory}`",
			Type:            "`com.switchyard.file.created`, `com.switchyard.file.modified` or `com.switchyard.file.removed`",
			Subject:         "the path relative to the watched directory, with `/` separators (characters CloudEvents strings forbid are percent-encoded)",
			Time:            "the file's modification time (for a removal: when it was noticed)",
			DataContentType: "`application/json`; with `include_content`, the type guessed from the file's extension (`application/octet-stream` when unknown)",
			Data:            "`{\"path\", \"size\", \"mod_time\", \"sha256\"}` (`sha256` with `checksum`); with `include_content`, the file's bytes",
			Extensions: map[string]string{
				"filesize":    "with `include_content`: the file's size (integer)",
				"filemodtime": "with `include_content`: the file's modification time (timestamp)",
				"filesha256":  "with `include_content` and `checksum`: the file's hex SHA-256",
			},
		},
		Confirms: connectors.ConfirmsCheckpoint,
		Loses:    "changes accepted but not yet delivered, and the record of the files already reported: the next start is a first start, which reports every file as created again (nothing with `emit_existing: false`), so modifications and removals not yet delivered are lost",
		New:      New,
	})
}
