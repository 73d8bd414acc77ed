// Package trigger defines a trigger as users write it (the trigger file, in
// YAML or JSON) and as the API carries it (switchyard.v1.Trigger): its name,
// filter, target and delivery policy, their defaults, and validation that
// reports every bad field with its path.
//
// Decode reads a trigger file (YAML documents or JSON) against the Spec
// type, reporting every unknown field and every value of the wrong type with
// its path and line; Document.Validate locates the rule errors by line too.
//
// A Spec is plain data. Compile turns a valid Spec into a Trigger whose filter
// is compiled once; the router holds compiled triggers only. CompileWith also
// applies a server's Policy (egress allowlist, TLS required, secrets it
// holds), for triggers being applied through the API. Trigger.Explain says
// why its filter, scope included, matches an event or not (paths such as
// "filter.all[1].cel" and "scope.sources"); ExplanationToProto carries that
// over the API. Diff lists the fields two versions of a trigger differ in,
// for a dry-run apply.
//
// A target's credentials are names of secrets held by the server, never the
// secrets; a target renders redacted (Target.Redacted, also String), so
// listings, logs and dead letters show no userinfo or query value.
package trigger
