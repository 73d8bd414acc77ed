package connectors

import (
	"fmt"
	"sort"
	"strings"
)

// Markdown renders the connector's reference page from its spec: what it
// does, every field with its type, default and doc, and the CloudEvent it
// emits. docs/connectors/<kind>.md is generated from it (a test fails when
// the committed page is stale).
func (s Spec) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from the connector's spec by `go test ./connectors/all -run TestDocs -update`. Do not edit. -->\n\n")
	fmt.Fprintf(&b, "# `%s` source\n\n%s\n\n", s.Kind, s.Summary)
	if s.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Description))
	}
	b.WriteString("## Configuration\n\n```yaml\nsources:\n  - name: my-source\n    kind: " + s.Kind + "\n    fields:\n")
	for _, f := range s.Fields {
		if !f.Required && f.Example == "" {
			continue
		}
		ex := f.Example
		if ex == "" {
			ex = "…"
		}
		fmt.Fprintf(&b, "      %s: %s\n", f.Name, ex)
	}
	b.WriteString("```\n\n## Fields\n\n| field | type | default | description |\n|---|---|---|---|\n")
	for _, f := range s.Fields {
		def := "—"
		switch {
		case f.Required:
			def = "**required**"
		case f.Default != nil:
			def = fmt.Sprintf("`%v`", f.Default)
		}
		doc := strings.ReplaceAll(f.Doc, "|", "\\|")
		if f.Secret {
			doc += " (secret: never logged)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, def, doc)
	}
	e := s.Emits
	b.WriteString("\n## The CloudEvent it emits\n\n| attribute | value |\n|---|---|\n")
	for _, row := range [][2]string{{"id", e.ID}, {"source", e.Source}, {"type", e.Type}, {"subject", e.Subject}, {"time", e.Time}, {"datacontenttype", e.DataContentType}, {"data", e.Data}} {
		if row[1] == "" {
			row[1] = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", row[0], strings.ReplaceAll(row[1], "|", "\\|"))
	}
	if len(e.Extensions) > 0 {
		keys := make([]string, 0, len(e.Extensions))
		for k := range e.Extensions {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| `%s` (extension) | %s |\n", k, strings.ReplaceAll(e.Extensions[k], "|", "\\|"))
		}
	}
	b.WriteString("\n## Durability\n\n")
	if !s.Volatile() {
		b.WriteString("Confirms: **nothing**. " + confirmsDoc[ConfirmsNothing] + ", so it may run on the embedded store.\n")
		return b.String()
	}
	confirms, loses := s.Confirms, s.Loses
	if confirms == "" {
		confirms, loses = "undeclared", unknownLoss
	}
	fmt.Fprintf(&b, "Confirms: **%s**. %s. On a store that forgets what it holds (the embedded store, used without "+
		"`redis_url`), a restart loses %s. The server refuses to run this source on the embedded store "+
		"unless `allow_volatile_sources: true` (or `serve --allow-volatile-sources`) accepts that loss.\n",
		confirms, confirmsDoc[s.Confirms], loses)
	return b.String()
}

// confirmsDoc says in the docs what each Confirms means.
var confirmsDoc = map[Confirms]string{
	ConfirmsUpstream:   "Once Switchyard has accepted an event, the source commits its position to the system it reads, which does not send the event again",
	ConfirmsCaller:     "The source answers its caller with success once Switchyard has accepted the event, and the caller does not send it again",
	ConfirmsCheckpoint: "The source keeps its position in Switchyard's store, beside the events it accepted",
	ConfirmsNothing:    "The source tells no one that an event was accepted and reads again, after a restart, what it had not delivered",
	"":                 "The connector does not declare what it confirms, so it is assumed to confirm accepted events",
}
