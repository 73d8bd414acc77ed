// Package monitoring holds no code: it is a module of its own whose test
// checks the Prometheus alerting rules (../prometheus/alerts.yaml) and the
// Grafana dashboard (../grafana/switchyard.json) against a real server, and
// evaluates the alerts on the delivery features with Prometheus' own engine
// over series made for them. The test parses them with Prometheus' own rule
// and PromQL parsers, which live
// in a large module (github.com/prometheus/prometheus, with cloud SDKs and
// Kubernetes clients among its requirements); keeping it out of the main
// module keeps those out of its go.mod and go.sum. scripts/test.sh runs it.
package monitoring
