package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// A trigger file is decoded in two steps: the text becomes a tree of YAML
// nodes that remember their line (JSON input is turned into the same tree by
// a JSON tokenizer, since YAML parsers refuse some valid JSON, such as the
// escape "\/"), then the tree is walked against the Spec type, field by
// field, so that every unknown key and every value of the wrong type is
// reported with its path and line, not only the first one.

// Document is one trigger read from a trigger file, with the line of each
// field it set, so that errors found later (by Validate) can point at a line
// too.
type Document struct {
	// Spec is the trigger. A field whose value could not be decoded is left
	// zero (and reported by Decode).
	Spec Spec
	// Index is the 1-based position of the trigger in the file.
	Index int
	// Line is the line where the trigger starts (1-based).
	Line int

	lines  map[string]int // field path → line of its key
	failed []string       // paths Decode reported errors for
}

// LineOf returns the line of the field at path ("delivery.max_attempts",
// "filter.all[1].cel"), or of its closest enclosing field that the file
// sets, or the document's first line.
func (d Document) LineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return d.Line
}

// parentPath returns the path of the field enclosing path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Validate checks the trigger like Spec.Validate and locates each problem by
// line. Problems under a field whose decoding already failed are left out:
// they would only repeat that error ("target: required" after "target.grpc:
// want a string").
func (d Document) Validate() FileErrors {
	err := d.Spec.Validate()
	var fes FieldErrors
	if !errors.As(err, &fes) {
		return nil
	}
	var out FileErrors
	for _, fe := range fes {
		if d.decodeFailedAt(fe.Path) {
			continue
		}
		out = append(out, FileError{Line: d.LineOf(fe.Path), FieldError: fe})
	}
	return out
}

// decodeFailedAt reports whether decoding failed at path, inside it or
// around it.
func (d Document) decodeFailedAt(path string) bool {
	for _, f := range d.failed {
		if f == "" || f == path || within(path, f) || within(f, path) {
			return true
		}
	}
	return false
}

// within reports whether path p is inside the field at path outer.
func within(p, outer string) bool {
	return len(p) > len(outer) && strings.HasPrefix(p, outer) && (p[len(outer)] == '.' || p[len(outer)] == '[')
}

// FileError is one problem of a trigger file: a syntax error, an unknown
// field, a value of the wrong type, or an invalid value found by Validate.
type FileError struct {
	// Line is the 1-based line of the problem in the file, 0 when unknown.
	Line int
	// FieldError says which field (Path, empty for the file or a whole
	// document) and what is wrong; its Line and Column locate a problem
	// inside a filter expression.
	FieldError
}

// Error renders "line 7: filter.colour: unknown field ...".
func (e FileError) Error() string {
	msg := e.FieldError.Msg
	if e.Path != "" {
		msg = e.FieldError.Error()
	}
	if e.Line > 0 {
		return "line " + strconv.Itoa(e.Line) + ": " + msg
	}
	return msg
}

// FileErrors lists the problems of a trigger file, in file order.
type FileErrors []FileError

func (e FileErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return "invalid trigger file: " + strings.Join(msgs, "; ")
}

// maxAliasNodes bounds the values a file may reach through YAML aliases: a
// few lines of nested aliases can describe billions of filters. Without
// aliases, the size of the file bounds the work.
const maxAliasNodes = 10_000

// Decode reads every trigger of a trigger file: YAML documents separated by
// "---" lines, each holding one trigger or a list of them, or JSON (one
// object or an array of them). It reports every problem it finds (syntax
// errors, unknown fields, values of the wrong type) in FileErrors, and
// returns the triggers it read even then, with the fields in error left
// zero, so that Document.Validate can add the problems of the others. The
// triggers are not validated.
func Decode(data []byte) ([]Document, FileErrors) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, FileErrors{{FieldError: FieldError{Msg: "empty trigger file"}}}
	}
	var roots []*yaml.Node
	var syntax *FileError
	if trimmed[0] == '{' || trimmed[0] == '[' {
		root, err := jsonTree(data)
		if err == nil {
			roots = []*yaml.Node{root}
		} else if yroots, yerr := yamlTrees(data); yerr == nil {
			// Flow-style YAML, such as {name: a, target: {grpc: "h:1"}}.
			roots = yroots
		} else {
			syntax = err
		}
	} else {
		roots, syntax = yamlTrees(data)
	}
	d := &decoder{budget: maxAliasNodes}
	var docs []Document
	for _, root := range roots {
		switch root.Kind {
		case yaml.SequenceNode:
			for _, item := range root.Content {
				docs = append(docs, d.document(item, len(docs)+1))
			}
		case yaml.MappingNode:
			docs = append(docs, d.document(root, len(docs)+1))
		default:
			if isNull(root) {
				continue // an empty document
			}
			d.errs = append(d.errs, FileError{Line: root.Line, FieldError: FieldError{
				Msg: "want a trigger (a mapping of name, filter, target, delivery) or a list of them, got " + describe(root)}})
		}
	}
	errs := d.errs
	if syntax != nil {
		errs = append(errs, *syntax)
	}
	if len(docs) == 0 && len(errs) == 0 {
		errs = FileErrors{{FieldError: FieldError{Msg: "trigger file holds no trigger"}}}
	}
	slices.SortStableFunc(errs, func(a, b FileError) int { return a.Line - b.Line })
	if len(errs) == 0 {
		errs = nil
	}
	return docs, errs
}

// Parse reads one or more trigger specs from a trigger file (see Decode).
// Unknown fields and values of the wrong type are errors: a FileErrors
// listing every one. The specs are not validated.
func Parse(data []byte) ([]Spec, error) {
	docs, errs := Decode(data)
	if errs != nil {
		return nil, errs
	}
	specs := make([]Spec, len(docs))
	for i, d := range docs {
		specs[i] = d.Spec
	}
	return specs, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlTrees parses the YAML documents of data. A syntax error ends the
// parse; the documents before it are returned with it.
func yamlTrees(data []byte) ([]*yaml.Node, *FileError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var roots []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return roots, nil
		}
		if err != nil {
			fe := &FileError{FieldError: FieldError{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				fe.Line, _ = strconv.Atoi(m[1])
				fe.Msg = "invalid YAML: " + m[2]
			}
			return roots, fe
		}
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			roots = append(roots, doc.Content[0])
		}
	}
}

// jsonTree parses a JSON value into the node tree YAML would give for it.
func jsonTree(data []byte) (*yaml.Node, *FileError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := jsonParser{dec: dec, data: data}
	root, err := p.value()
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("more than one JSON value (put several triggers in an array)")
			p.fail = dec.InputOffset()
		}
	}
	if err != nil {
		var se *json.SyntaxError
		off := p.fail
		if errors.As(err, &se) {
			off = se.Offset
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of file")
			off = int64(len(bytes.TrimRight(data, " \t\r\n")))
		}
		line, _ := position(data, off)
		return nil, &FileError{Line: line, FieldError: FieldError{Msg: "invalid JSON: " + err.Error()}}
	}
	return root, nil
}

// jsonParser turns the tokens of encoding/json into yaml.Nodes with their
// line and column.
type jsonParser struct {
	dec  *json.Decoder
	data []byte
	fail int64 // offset of the last token read, for errors without one
}

// start returns the offset where the next token begins.
func (p *jsonParser) start() int64 {
	off := p.dec.InputOffset()
	for off < int64(len(p.data)) && strings.IndexByte(" \t\r\n,:", p.data[off]) >= 0 {
		off++
	}
	return off
}

func (p *jsonParser) value() (*yaml.Node, error) {
	off := p.start()
	p.fail = off
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	line, col := position(p.data, off)
	n := &yaml.Node{Line: line, Column: col}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			for p.dec.More() {
				key, err := p.value()
				if err != nil {
					return nil, err
				}
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, key, val)
			}
		case '[':
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			for p.dec.More() {
				item, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, item)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", t
	case json.Number:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", t.String()
		if _, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			n.Tag = "!!int"
		}
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	}
	return n, nil
}

// position returns the 1-based line and column of byte offset off.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// decoder walks node trees against the Spec type.
type decoder struct {
	errs    FileErrors
	budget  int // values left to visit through aliases
	aliased int // > 0 while walking the target of an alias
	doc     *Document
}

// document decodes one trigger.
func (d *decoder) document(n *yaml.Node, index int) Document {
	doc := Document{Index: index, Line: n.Line, lines: map[string]int{}}
	d.doc = &doc
	d.value(n, "", reflect.ValueOf(&doc.Spec).Elem())
	d.doc = nil
	return doc
}

// maxErrors bounds the problems reported for one file.
const maxErrors = 100

// fail records a problem at path (the line of n).
func (d *decoder) fail(n *yaml.Node, path, format string, a ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, FileError{Line: n.Line, FieldError: FieldError{Path: path, Msg: fmt.Sprintf(format, a...)}})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, FileError{Line: n.Line, FieldError: FieldError{Msg: fmt.Sprintf("more than %d problems; stopped reporting", maxErrors)}})
	}
	if d.doc != nil {
		d.doc.failed = append(d.doc.failed, path)
	}
}

// resolve follows an alias; a value reached through one counts against the
// budget. nil means the budget is spent (and reported).
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if d.aliased == 0 {
		return n
	}
	d.budget--
	if d.budget == 0 {
		d.fail(n, path, "YAML aliases expand to more than %d values", maxAliasNodes)
	}
	if d.budget <= 0 {
		return nil
	}
	return n
}

var durationType = reflect.TypeFor[Duration]()

// value decodes n into v, the field at path.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		d.aliased++
		defer func() { d.aliased-- }()
	}
	if n = d.resolve(n, path); n == nil || isNull(n) {
		return // null leaves the field unset, as in JSON
	}
	if v.Type() == durationType {
		d.duration(n, path, v)
		return
	}
	if v.Type() == publishType {
		if p, ok := d.publish(n, path); ok {
			v.Set(reflect.ValueOf(p))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.object(n, path, v)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, path, elem.Elem())
		v.Set(elem)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.doc.lines[p] = item.Line
			d.value(item, p, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		d.stringMap(n, path, v)
	case reflect.String:
		if s, ok := d.str(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if !isScalar(n, "!!int") {
			d.fail(n, path, "want an integer, got %s", describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if !isScalar(n, "!!bool") {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	default:
		d.fail(n, path, "cannot decode a %s", v.Type())
	}
}

// object decodes a mapping into the struct v, by the fields' json tags.
func (d *decoder) object(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping (%s), got %s", strings.Join(fieldNames(v.Type()), ", "), describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := d.resolve(n.Content[i], path)
		if kn == nil {
			return
		}
		name, ok := key(kn)
		p := join(path, name)
		if !ok {
			d.fail(kn, path, "want a field name, got %s", describe(kn))
			continue
		}
		if first, dup := seen[name]; dup {
			d.fail(kn, p, "set twice (first on line %d)", first)
			continue
		}
		seen[name] = kn.Line
		f, ok := fieldByName(v, name)
		if !ok {
			d.fail(kn, p, "unknown field; want one of %s", strings.Join(fieldNames(v.Type()), ", "))
			continue
		}
		d.doc.lines[p] = kn.Line
		d.value(n.Content[i+1], p, f)
	}
}

// stringMap decodes a mapping of strings (filter attributes).
func (d *decoder) stringMap(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
		d.fail(n, path, "want a mapping of attribute names to strings, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := d.resolve(n.Content[i], path)
		if kn == nil {
			return
		}
		name, ok := key(kn)
		if !ok {
			d.fail(kn, path, "want an attribute name, got %s", describe(kn))
			continue
		}
		p := join(path, name)
		if first, dup := seen[name]; dup {
			d.fail(kn, p, "set twice (first on line %d)", first)
			continue
		}
		seen[name] = kn.Line
		d.doc.lines[p] = kn.Line
		vn := d.resolve(n.Content[i+1], p)
		if vn == nil {
			return
		}
		if s, ok := d.str(vn, p); ok {
			m.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), reflect.ValueOf(s).Convert(v.Type().Elem()))
		}
	}
	v.Set(m)
}

// str returns the string of a string scalar. Numbers, booleans and dates
// are refused rather than converted: YAML reads 1.10 as the number 1.1, so
// the text a user meant is only certain when quoted.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	switch {
	case isScalar(n, "!!str"):
		return n.Value, true
	case n.Kind == yaml.ScalarNode:
		d.fail(n, path, "want a string, got %s (quote it: %q)", describe(n), n.Value)
	default:
		d.fail(n, path, "want a string, got %s", describe(n))
	}
	return "", false
}

// duration decodes a Go duration string ("500ms", "10s", "5m", "24h") or a
// number of seconds.
func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	const want = "want a duration such as 500ms, 10s, 5m or 24h"
	var dur time.Duration
	switch {
	case isScalar(n, "!!str"):
		p, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%s, got %s", want, describe(n))
			return
		}
		dur = p
	case isScalar(n, "!!int"), isScalar(n, "!!float"):
		var secs float64
		if err := n.Decode(&secs); err != nil || math.IsNaN(secs) || math.Abs(secs) > math.MaxInt64/float64(time.Second) {
			d.fail(n, path, "%s (or a number of seconds), got %s", want, describe(n))
			return
		}
		dur = time.Duration(secs * float64(time.Second))
	default:
		d.fail(n, path, "%s, got %s", want, describe(n))
		return
	}
	v.Set(reflect.ValueOf(Duration{dur}))
}

// isScalar reports whether n is a scalar of the given resolved tag.
func isScalar(n *yaml.Node, tag string) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tag
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// key returns a mapping key as a string; keys that are not scalars are
// refused.
func key(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe renders a node for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if r := []rune(v); len(r) > 40 {
			v = string(r[:39]) + "…"
		}
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str", "!!timestamp", "!!binary":
			return strconv.Quote(v)
		}
		return v
	}
	return "an alias"
}

// fieldByName returns the struct field whose json tag is name.
func fieldByName(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tagName(t.Field(i)) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// fieldNames lists the json names of the fields of struct type t.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}
