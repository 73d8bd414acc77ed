// Package chartcheck tests the Helm chart in deploy/helm/switchyard offline,
// without the helm binary or a cluster: it renders the chart with Helm's own
// Go library (default values, values-full.yaml and variants), runs Helm's
// lint rules, decodes every manifest strictly into the Kubernetes API types
// (an unknown or misplaced field is an error; the ServiceMonitor and KEDA
// ScaledObject into local structs of their CRDs' fields), checks what the
// chart promises (probes, security context, drain time, Secrets referenced
// and never inlined, refusals of unsafe values), and runs the real
// `switchyard serve --check-config` on the rendered configuration with the
// Deployment's own arguments, environment and mounted files.
//
// It is a module of its own so that Helm and the Kubernetes modules stay out
// of the main module's go.mod; scripts/test.sh runs it. It does not import
// the main module (its go.mod would then have to follow every requirement
// of the main one): it builds cmd/switchyard with `go build` in the
// repository root and reads the configuration keys the server knows from
// docs/config.md. Nothing here reaches the network.
package chartcheck
