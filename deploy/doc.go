// Package deploy holds no code: it is the home of the container image
// (Dockerfile), the compose file and its configuration, the Helm chart
// (helm/switchyard), the Grafana dashboard (grafana/) and the Prometheus
// alerting rules (prometheus/). Its tests check the invariants those files
// promise (ports on loopback by default, a Redis password without an
// insecure default, health checks, the mounted configuration, the sample
// function, the version from the source revision, the chart's list of
// secret connector fields), since no Docker engine or cluster runs in the
// test environment. The chart's own tests are the module helm/chartcheck,
// which keeps Helm and the Kubernetes modules out of the main go.mod; the
// rules and the dashboard are checked by the module monitoring, which keeps
// Prometheus' out of it.
package deploy
