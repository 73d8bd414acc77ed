package targets

import (
	"fmt"
	"strings"

	"github.com/switchyard-io/switchyard/connectors"
)

// Markdown renders the kind's reference page from its spec: what it does,
// a trigger using it, every field with its type, default and doc, how an
// event is written and what acknowledges it. docs/targets/<kind>.md is
// generated from it (a test in targets/all fails when the committed page is
// stale).
func (s Spec) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from the target's spec by `go test ./targets/all -run TestDocs -update`. Do not edit. -->\n\n")
	fmt.Fprintf(&b, "# `%s` target\n\n%s\n\n", s.Kind, s.Summary)
	if s.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Description))
	}
	b.WriteString("## In a trigger\n\n```yaml\nname: my-trigger\nfilter: {attributes: {type: com.example.order.created}}\ntarget:\n  publish:\n    kind: " + s.Kind + "\n")
	for _, f := range s.Fields {
		if !f.Required && f.Example == "" {
			continue
		}
		ex := f.Example
		if ex == "" {
			ex = "…"
		}
		fmt.Fprintf(&b, "    %s: %s\n", f.Name, ex)
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
		if f.Type == connectors.TypeSecretName {
			doc += " (the name of a secret the server holds, never the value)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, def, doc)
	}
	fmt.Fprintf(&b, "\n## How an event is written\n\n%s\n\n", strings.TrimSpace(s.Layout))
	if s.ReadBack != "" {
		fmt.Fprintf(&b, "Read back by %s with every attribute and the data byte for byte.\n\n", s.ReadBack)
	}
	fmt.Fprintf(&b, "## Acknowledgement\n\n%s\n", strings.TrimSpace(s.Confirms))
	return b.String()
}
