// Package filter is Switchyard's event filter language: it checks and
// compiles the `filter:` of a trigger into a Filter, evaluates filters
// against events (the protobuf io.cloudevents.v1.CloudEvent), and indexes
// many named filters so that routing an event does not cost one evaluation
// per trigger.
//
// # The filter language
//
// A filter (Spec) is a map of conditions; all the conditions present at one
// level must hold (AND), and a filter without any condition matches every
// event:
//
//	filter:
//	  attributes: {type: com.example.order.created}  # exact match
//	  prefix: {source: /shop/}                       # prefix match
//	  suffix: {subject: .pdf}                        # suffix match
//	  cesql: "subject LIKE 'eu-%'"                   # CloudEvents SQL v1
//	  cel: "data.total > 100"                        # CEL
//	  all: [ <filter>, ... ]                         # every sub-filter matches
//	  any: [ <filter>, ... ]                         # at least one matches
//	  not: <filter>                                  # negation
//
// attributes, prefix and suffix name context attributes, core (id, source,
// specversion, type, datacontenttype, dataschema, subject, time) or
// extension, and compare their canonical string form (the CloudEvents 1.0
// "String encoding": integers in decimal, booleans as true/false, timestamps
// in RFC 3339 UTC, binary in standard base64, URIs as written). An attribute
// the event does not have never matches. Names must be valid CloudEvents
// attribute names ([a-z0-9]+); prefix and suffix values must not be empty.
//
// Empty maps and lists count as absent (`any: []` is no condition); `not: {}`
// negates the match-all filter and so matches nothing.
//
// # Errors at evaluation
//
// Evaluation never fails: a filter either matches or not. A CEL or CESQL
// expression whose evaluation errs (a field missing from the data, a missing
// attribute in CESQL, a type mismatch, the cost limit exceeded) does not
// match. `not` negates that outcome: `not: {cel: "data.total > 100"}`
// matches an event whose data has no total. Write the presence test into
// the expression when that matters (`has(data.total) && ...` in CEL,
// `EXISTS x AND ...` in CESQL).
//
// # CESQL
//
// The cesql condition is a CloudEvents SQL v1 expression, parsed with
// sdk-go's sql/v2 parser and evaluated against the event's context
// attributes (not its data); extension attributes keep their types (String,
// Integer, Boolean; other types as their canonical strings). The event
// matches when the result is boolean true and no error occurred. Following
// CESQL v1, reading an attribute that is absent is an error, which fails the
// whole expression (also under NOT): guard optional attributes with EXISTS.
// Unknown functions, wrong argument counts, out-of-range integer literals
// and expressions that can only yield an integer or a string are rejected
// by Compile.
//
// # CEL
//
// The cel condition is a CEL expression (with the cel-go strings extension)
// over these variables:
//
//	id, source, type, specversion,
//	subject, datacontenttype, dataschema  string; "" when absent
//	time        timestamp; the zero google.protobuf.Timestamp (Unix epoch) when absent
//	extensions  map(string, dyn): extension attributes with typed values
//	            (string for String/URI/URI-reference, bool, int, bytes, timestamp)
//	attributes  map(string, string): every attribute present, core and
//	            extension, in canonical string form
//	data        dyn: the event data, decoded:
//	            - JSON (maps, lists, double numbers, ...) when datacontenttype is
//	              application/json, text/json or */*+json, or is absent and the
//	              data is valid JSON;
//	            - else a string for text data (text_data, or text/* binary data
//	              that is valid UTF-8);
//	            - else bytes (binary data, the serialized proto_data value);
//	            - null when the event has no data.
//
// Use `'tenant' in extensions` or `has(extensions.tenant)` to test for an
// extension. The expression must have type bool or dyn; it matches when it
// evaluates to true. Each evaluation is bounded by CELCostLimit.
//
// Expressions (CESQL and CEL) are at most MaxExpressionBytes long and all,
// any and not nest at most MaxDepth levels.
//
// # Compiling and matching
//
// Compile checks a whole Spec tree once, reporting every problem as a
// *CompileError with its path ("filter.all[1].cesql") and, inside
// expressions, its line and column; the resulting Filter is immutable and
// safe for concurrent use.
//
// An Input wraps one event for matching. It computes what filters derive
// from the event (decoded data, CEL variables, the sdk-go event CESQL works
// on) on first use and caches it, so one event is decoded at most once
// however many filters are evaluated against it. Inputs can be pooled with
// Reset.
//
// # Explaining a verdict
//
// Explain evaluates a compiled filter against an event on a path of its
// own (matching pays nothing for it) and returns an Explanation: the
// verdict, always Match's, and every condition with its own verdict, its
// path in the trigger ("filter.all[1].cel"), the attribute value against
// the expected one, or the expression's value or evaluation error (with how
// CEL saw the data when that explains a miss). And and AttributePrefixes
// compose filters that keep their own paths: router/trigger adds a
// trigger's event scope ("scope.sources") this way.
//
// # The index
//
// Index holds the compiled filters of many named entries (triggers). It
// buckets each entry by the exact type its filter requires (from
// attributes.type at the top level or within a top-level all), or else by
// the exact source it requires, or else puts it on a scan list. Matching an
// event evaluates the entries of its type's bucket, of its source's bucket,
// and the scan list, and returns the names of those that match in name
// order. The cost is therefore independent of the number of triggers that
// select other types or sources: 10,000 exact-type triggers cost about what
// one does. See Index for details.
package filter
