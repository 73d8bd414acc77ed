package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/switchyard-io/switchyard/targets"
)

// PublishTarget makes a trigger publish its events to a message broker or
// a database table instead of invoking a function: `publish: {kind: amqp,
// exchange: orders, …}`. Kind names a target kind registered in
// targets.Default (targets/all registers the built-in ones); Fields are
// that kind's fields, written beside kind in the file and validated against
// the kind's spec, each problem with its path ("target.publish.exchange:
// required"). Credentials are never among them: fields of type secret name
// name secrets the server holds.
type PublishTarget struct {
	Kind   string
	Fields map[string]any
}

// MarshalJSON writes the target flat: {"kind": …, field: value, …}.
func (p PublishTarget) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Fields)+1)
	maps.Copy(m, p.Fields)
	m["kind"] = p.Kind
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat form.
func (p *PublishTarget) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	kind, ok := m["kind"].(string)
	if _, present := m["kind"]; present && !ok {
		return errors.New("publish.kind: want a string")
	}
	delete(m, "kind")
	for k, v := range m {
		m[k] = fromJSONNumber(v)
	}
	*p = PublishTarget{Kind: kind, Fields: m}
	return nil
}

// fromJSONNumber turns json.Numbers (also inside lists and maps) into
// int64 or float64, the types the field checks take.
func fromJSONNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSONNumber(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSONNumber(x[k])
		}
	}
	return v
}

// Spec returns the registered spec of the target's kind.
func (p PublishTarget) Spec() (targets.Spec, bool) { return targets.Default.Lookup(p.Kind) }

// Build validates the fields against the kind's spec and returns them
// typed.
func (p PublishTarget) Build() (targets.Spec, targets.Config, error) {
	spec, ok := p.Spec()
	if !ok {
		return targets.Spec{}, targets.Config{}, fmt.Errorf("unknown target kind %q", p.Kind)
	}
	c, problems := spec.Build(p.Fields)
	if len(problems) > 0 {
		return spec, c, fmt.Errorf("%s: %s", problems[0].Field, problems[0].Msg)
	}
	return spec, c, nil
}

// validate checks the target's kind and fields, each problem with its path.
func (p PublishTarget) validate() FieldErrors {
	var errs FieldErrors
	if p.Kind == "" {
		return FieldErrors{{Path: "target.publish.kind", Msg: "required: one of " + kindList()}}
	}
	spec, ok := p.Spec()
	if !ok {
		return FieldErrors{{Path: "target.publish.kind", Msg: fmt.Sprintf("unknown target kind %q; want one of %s", p.Kind, kindList())}}
	}
	_, problems := spec.Build(p.Fields)
	for _, pr := range problems {
		msg := pr.Msg
		if pr.Unknown {
			msg = fmt.Sprintf("unknown field of target kind %s; want one of kind, %s", p.Kind, strings.TrimPrefix(pr.Msg, "known: "))
		}
		errs = append(errs, FieldError{Path: "target.publish." + pr.Field, Msg: msg})
	}
	return errs
}

func kindList() string {
	kinds := targets.Default.Kinds()
	if len(kinds) == 0 {
		return "(no target kind is registered in this program)"
	}
	return strings.Join(kinds, ", ")
}

// redacted renders the target as its kind's Display does.
func (p PublishTarget) redacted() string {
	spec, c, err := p.Build()
	if err != nil {
		return "publish:" + p.Kind
	}
	return spec.Display(c)
}

// check applies a policy to a valid publish target.
func (p Policy) checkPublish(pt PublishTarget) FieldErrors {
	var errs FieldErrors
	spec, c, err := pt.Build()
	if err != nil {
		return FieldErrors{{Path: "target.publish", Msg: err.Error()}}
	}
	if p.RequireTLS && (spec.Secure == nil || !spec.Secure(c)) {
		errs = append(errs, FieldError{Path: "target.publish", Msg: "this server requires TLS to targets: use the kind's TLS form (see docs/targets/" + pt.Kind + ".md)"})
	}
	if p.CheckAddress != nil {
		for _, a := range spec.Addresses(c) {
			if err := p.CheckAddress(a.HostPort); err != nil {
				errs = append(errs, FieldError{Path: "target.publish." + a.Field, Msg: err.Error()})
			}
		}
	}
	if p.CheckSecret != nil {
		for _, s := range spec.SecretNames(c) {
			if err := p.CheckSecret(s.HostPort); err != nil {
				errs = append(errs, FieldError{Path: "target.publish." + s.Field, Msg: err.Error()})
			}
		}
	}
	return errs
}

var publishType = reflect.TypeFor[PublishTarget]()

// publish decodes a publish target: kind and the kind's fields, kept as
// the generic values the fields' checks take.
func (d *decoder) publish(n *yaml.Node, path string) (PublishTarget, bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping (kind and the kind's fields), got %s", describe(n))
		return PublishTarget{}, false
	}
	p := PublishTarget{Fields: map[string]any{}}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := d.resolve(n.Content[i], path)
		if kn == nil {
			return p, false
		}
		name, ok := key(kn)
		if !ok {
			d.fail(kn, path, "want a field name, got %s", describe(kn))
			continue
		}
		fp := join(path, name)
		if first, dup := seen[name]; dup {
			d.fail(kn, fp, "set twice (first on line %d)", first)
			continue
		}
		seen[name] = kn.Line
		d.doc.lines[fp] = kn.Line
		vn := d.resolve(n.Content[i+1], fp)
		if vn == nil {
			return p, false
		}
		if name == "kind" {
			if s, ok := d.str(vn, fp); ok {
				p.Kind = s
			}
			continue
		}
		if v, ok := d.generic(vn, fp); ok && v != nil {
			p.Fields[name] = v
		}
	}
	return p, true
}

// generic decodes a field value of a target kind: a scalar (string,
// integer, number, boolean), a list or a mapping of them.
func (d *decoder) generic(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!str":
			return n.Value, true
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				d.fail(n, path, "%s is out of range", describe(n))
				return nil, false
			}
			return i, true
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(n, path, "%s is not a finite number", describe(n))
				return nil, false
			}
			return f, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				d.fail(n, path, "want true or false, got %s", describe(n))
				return nil, false
			}
			return b, true
		}
		d.fail(n, path, "want a string, number or boolean, got %s (quote it: %q)", describe(n), n.Value)
		return nil, false
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			item = d.resolve(item, p)
			if item == nil {
				return nil, false
			}
			v, ok := d.generic(item, p)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn := d.resolve(n.Content[i], path)
			if kn == nil {
				return nil, false
			}
			k, ok := key(kn)
			if !ok {
				d.fail(kn, path, "want a key, got %s", describe(kn))
				return nil, false
			}
			vn := d.resolve(n.Content[i+1], join(path, k))
			if vn == nil {
				return nil, false
			}
			v, ok := d.generic(vn, join(path, k))
			if !ok {
				return nil, false
			}
			out[k] = v
		}
		return out, true
	}
	d.fail(n, path, "cannot decode %s", describe(n))
	return nil, false
}
