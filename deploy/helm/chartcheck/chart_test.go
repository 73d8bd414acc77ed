package chartcheck

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// defaultSecrets are the Secrets values.yaml expects (its header says how
// to create them).
func defaultSecrets(t *testing.T) secrets {
	return secrets{
		"switchyard-admin": {"token": token(t)},
		"switchyard-redis": {"password": []byte("Redis-pass_0123")},
	}
}

// fullSecrets are the Secrets values-full.yaml names.
func fullSecrets(t *testing.T) secrets {
	c := newCerts(t, "events-bus-http.events.svc", "events-bus-grpc.events.svc")
	return secrets{
		"events-admin":      {"admin-token": token(t)},
		"events-redis":      {"redis-password": []byte("Redis-pass_0123"), "sentinel-password": []byte("Sentinel-pass_0123")},
		"events-tls":        {"tls.crt": c.Cert, "tls.key": c.Key, "ca.crt": c.CA},
		"github-webhook":    {"secret": []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")},
		"shop-db":           {"password": []byte("shop-pass_0123")},
		"otlp-credentials":  {"headers": []byte("x-api-key=fake")},
		"events-prometheus": {"token": []byte("sy_viewer_token")},
	}
}

// TestDefaultValues: values.yaml alone renders a secure, highly available
// install that the server accepts.
func TestDefaultValues(t *testing.T) {
	objs := manifests(t, nil)
	checkInvariants(t, objs, "sy-switchyard")
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.Kind] = true
	}
	for _, k := range []string{"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "ServiceAccount"} {
		if !kinds[k] {
			t.Errorf("no %s rendered", k)
		}
	}
	for _, k := range []string{"HorizontalPodAutoscaler", "ScaledObject", "ServiceMonitor", "NetworkPolicy"} {
		if kinds[k] {
			t.Errorf("%s rendered although it is optional and off by default", k)
		}
	}
	d := get[*appsv1.Deployment](t, objs, "Deployment", "sy-switchyard")
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want 2 or more", d.Spec.Replicas)
	}
	spec := d.Spec.Template.Spec
	var keys []string
	for _, c := range spec.TopologySpreadConstraints {
		keys = append(keys, c.TopologyKey)
	}
	if !slices.Contains(keys, "kubernetes.io/hostname") || !slices.Contains(keys, "topology.kubernetes.io/zone") {
		t.Errorf("topology spread over %v, want nodes and zones", keys)
	}
	pdb := get[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "sy-switchyard")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v", pdb.Spec.MaxUnavailable)
	}
	c := spec.Containers[0]
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
	}
	env := envOf(c)
	if ref := env["SWITCHYARD_REDIS_PASSWORD"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "switchyard-redis" {
		t.Errorf("the Redis password does not come from the Secret switchyard-redis: %+v", env["SWITCHYARD_REDIS_PASSWORD"])
	}
	for name := range env {
		if strings.HasPrefix(name, "OTEL_") {
			t.Errorf("tracing is off by default, yet %s is set", name)
		}
	}

	p := layOut(t, objs, "sy-switchyard", defaultSecrets(t))
	file := renderedConfig(t, p)
	if file["redis_url"] != "redis://:${SWITCHYARD_REDIS_PASSWORD}@redis:6379/0" {
		t.Errorf("redis_url %v", file["redis_url"])
	}
	// Dedup, delayed delivery and the archive keep the server's defaults
	// (no dedup window, no archive).
	for _, k := range []string{"dedup_window", "max_dedup_window", "max_deliver_after", "archive_retention", "archive_max_bytes"} {
		if v, ok := file[k]; ok {
			t.Errorf("config %s = %v rendered by default", k, v)
		}
	}
	out := checkConfig(t, p, false)
	if l := securityLine(t, out, "authentication"); !strings.HasPrefix(l, "security: on ") {
		t.Errorf("authentication is not on: %s", l)
	}
}

// TestFullValues: values-full.yaml, which sets every key of the chart,
// renders every kind, and the server accepts what it renders.
func TestFullValues(t *testing.T) {
	vals := valuesFile(t, "values-full.yaml")
	if missing := unsetKeys(valuesFile(t, "values.yaml"), vals, ""); len(missing) > 0 {
		t.Errorf("values-full.yaml does not set %s", strings.Join(missing, ", "))
	}
	objs := manifests(t, vals)
	checkInvariants(t, objs, "events-bus")
	for _, k := range []string{key("Deployment", "events-bus"), key("Service", "events-bus-http"), key("Service", "events-bus-grpc"),
		key("ConfigMap", "events-bus"), key("PodDisruptionBudget", "events-bus"), key("ServiceAccount", "events-bus-sa"),
		key("ScaledObject", "events-bus"), key("ServiceMonitor", "events-bus"), key("NetworkPolicy", "events-bus")} {
		if _, ok := objs[k]; !ok {
			t.Errorf("%s not rendered", k)
		}
	}
	d := get[*appsv1.Deployment](t, objs, "Deployment", "events-bus")
	if d.Spec.Replicas != nil {
		t.Errorf("replicas %d set although KEDA scales the Deployment", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/platform/switchyard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image %s: the digest must win over the tag", c.Image)
	}
	if !slices.Contains(c.Args, "--trigger-sync-timeout=8s") {
		t.Errorf("extraArgs missing from %v", c.Args)
	}
	env := envOf(c)
	for name, want := range map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.05",
		"OTEL_SERVICE_NAME": "events-bus", "GOMEMLIMIT": "900MiB",
		"OTEL_RESOURCE_ATTRIBUTES": "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),deployment.environment=production"} {
		if env[name].Value != want {
			t.Errorf("%s=%q, want %q", name, env[name].Value, want)
		}
	}
	// $(POD_NAME) expands only when POD_NAME comes earlier.
	if slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAME" }) >
		slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "OTEL_RESOURCE_ATTRIBUTES" }) {
		t.Error("OTEL_RESOURCE_ATTRIBUTES comes before POD_NAME")
	}
	for name, ref := range map[string][2]string{"OTEL_EXPORTER_OTLP_HEADERS": {"otlp-credentials", "headers"},
		"SWITCHYARD_REDIS_SENTINEL_PASSWORD": {"events-redis", "sentinel-password"}, "GITHUB_WEBHOOK_SECRET": {"github-webhook", "secret"},
		"SHOP_DB_PASSWORD": {"shop-db", "password"}} {
		s := env[name].ValueFrom
		if s == nil || s.SecretKeyRef == nil || s.SecretKeyRef.Name != ref[0] || s.SecretKeyRef.Key != ref[1] {
			t.Errorf("%s does not come from Secret %s key %s: %+v", name, ref[0], ref[1], env[name])
		}
	}

	http := get[*corev1.Service](t, objs, "Service", "events-bus-http")
	grpc := get[*corev1.Service](t, objs, "Service", "events-bus-grpc")
	if http.Spec.Type != corev1.ServiceTypeLoadBalancer || http.Spec.Ports[0].Port != 443 || *http.Spec.Ports[0].AppProtocol != "https" {
		t.Errorf("http Service %+v", http.Spec)
	}
	if grpc.Spec.ClusterIP != corev1.ClusterIPNone || grpc.Spec.Ports[0].Port != 9443 {
		t.Errorf("grpc Service is not headless on 9443: %+v", grpc.Spec)
	}

	so := get[*ScaledObject](t, objs, "ScaledObject", "events-bus")
	if so.Spec.ScaleTargetRef.Name != "events-bus" || *so.Spec.MinReplicaCount != 3 || *so.Spec.MaxReplicaCount != 20 {
		t.Errorf("ScaledObject %+v", so.Spec)
	}
	var types []string
	for _, tr := range so.Spec.Triggers {
		types = append(types, tr.Type)
		if tr.Type == "prometheus" {
			if !strings.Contains(tr.Metadata["query"], "switchyard_trigger_ready") || tr.Metadata["threshold"] != "5000" ||
				tr.AuthenticationRef == nil || tr.AuthenticationRef.Name != "prometheus-auth" {
				t.Errorf("prometheus trigger %+v", tr)
			}
		}
	}
	if !slices.Equal(types, []string{"prometheus", "cpu"}) {
		t.Errorf("KEDA triggers %v", types)
	}

	sm := get[*ServiceMonitor](t, objs, "ServiceMonitor", "events-bus")
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "http" || ep.Path != "/metrics" || ep.Scheme != "https" || ep.Authorization == nil ||
		ep.Authorization.Credentials.Name != "events-prometheus" || ep.TLSConfig == nil || ep.TLSConfig.ServerName != "events-bus-http.events.svc" {
		t.Errorf("ServiceMonitor endpoint %+v", ep)
	}
	if sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v", sm.Labels)
	}
	if !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(http.Labels)) {
		t.Errorf("the ServiceMonitor selects %v, the HTTP Service is labelled %v", sm.Spec.Selector.MatchLabels, http.Labels)
	}

	np := get[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "events-bus")
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) != 4 || len(np.Spec.Ingress) != 2 {
		t.Errorf("NetworkPolicy %+v", np.Spec)
	}

	p := layOut(t, objs, "events-bus", fullSecrets(t))
	file := renderedConfig(t, p)
	for k, want := range map[string]any{
		"redis_url":        "redis+sentinel://switchyard:${SWITCHYARD_REDIS_PASSWORD}@redis-sentinel-0.redis:26379,redis-sentinel-1.redis:26379,redis-sentinel-2.redis:26379/mymaster/0?dial_timeout=2s&sentinel_password=${SWITCHYARD_REDIS_SENTINEL_PASSWORD}",
		"ack_after":        "replicas=1",
		"ack_timeout":      "2s",
		"shutdown_timeout": "30s",
		"shutdown_delay":   "5s",
		"max_event_bytes":  float64(262144),
		"key_prefix":       "events",
		// dedupWindow, maxDedupWindow, maxDeliverAfter, archive.
		"dedup_window":      "10m",
		"max_dedup_window":  "2h",
		"max_deliver_after": "720h",
		"archive_retention": "168h",
		"archive_max_bytes": float64(2000000000),
	} {
		if file[k] != want {
			t.Errorf("config %s = %v (%T), want %v", k, file[k], file[k], want)
		}
	}
	if !strings.HasPrefix(fmt.Sprint(file["tls_cert_file"]), p.Root) || file["tls_client_auth"] != "request" {
		t.Errorf("TLS keys %v %v", file["tls_cert_file"], file["tls_client_auth"])
	}
	out := checkConfig(t, p, true)
	if l := securityLine(t, out, "authentication"); !strings.HasPrefix(l, "security: on ") {
		t.Errorf("authentication is not on: %s", l)
	}
}

// unsetKeys lists the keys of defaults (recursively, through maps whose
// default is not empty) that vals does not set.
func unsetKeys(defaults, vals map[string]any, prefix string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		v, ok := vals[k]
		if !ok {
			out = append(out, prefix+k)
			continue
		}
		dm, isMap := defaults[k].(map[string]any)
		vm, _ := v.(map[string]any)
		if isMap && len(dm) > 0 {
			out = append(out, unsetKeys(dm, vm, prefix+k+".")...)
		}
	}
	return out
}

// TestVariants renders other combinations of the values and checks them the
// same way.
func TestVariants(t *testing.T) {
	cases := map[string]struct {
		vals  map[string]any
		sec   func(*testing.T) secrets
		check func(t *testing.T, objs map[string]object, p pod, out string)
	}{
		"redis cluster without password, HPA": {
			vals: merge(set("redis.url", "redis+cluster://r0.redis:6379,r1.redis:6379,r2.redis:6379"), set("redis.password.existingSecret", ""),
				set("autoscaling.enabled", true)),
			sec: defaultSecrets,
			check: func(t *testing.T, objs map[string]object, p pod, _ string) {
				hpa := get[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler", "sy-switchyard")
				if hpa.Spec.ScaleTargetRef.Name != "sy-switchyard" || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
					*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 || *hpa.Spec.MinReplicas != 2 {
					t.Errorf("HPA %+v", hpa.Spec)
				}
				if d := get[*appsv1.Deployment](t, objs, "Deployment", "sy-switchyard"); d.Spec.Replicas != nil {
					t.Error("replicas set although the HPA scales the Deployment")
				}
				if u := renderedConfig(t, p)["redis_url"]; u != "redis+cluster://r0.redis:6379,r1.redis:6379,r2.redis:6379" {
					t.Errorf("redis_url %v", u)
				}
				if _, ok := envOf(get[*appsv1.Deployment](t, objs, "Deployment", "sy-switchyard").Spec.Template.Spec.Containers[0])["SWITCHYARD_REDIS_PASSWORD"]; ok {
					t.Error("SWITCHYARD_REDIS_PASSWORD set without a password Secret")
				}
			},
		},
		"ACL user, KEDA defaults": {
			vals: merge(set("redis.username", "sy"), set("keda.enabled", true)),
			sec:  defaultSecrets,
			check: func(t *testing.T, objs map[string]object, p pod, _ string) {
				if u := renderedConfig(t, p)["redis_url"]; u != "redis://sy:${SWITCHYARD_REDIS_PASSWORD}@redis:6379/0" {
					t.Errorf("redis_url %v", u)
				}
				so := get[*ScaledObject](t, objs, "ScaledObject", "sy-switchyard")
				want := `sum(max by (trigger) (switchyard_trigger_ready{namespace="events",service="sy-switchyard-http"}))`
				if q := so.Spec.Triggers[0].Metadata["query"]; q != want {
					t.Errorf("default query %s, want %s", q, want)
				}
			},
		},
		"without authentication when told": {
			vals: merge(set("auth.adminToken.existingSecret", ""), set("auth.insecureNoAuth", true)),
			sec:  defaultSecrets,
			check: func(t *testing.T, objs map[string]object, p pod, out string) {
				if !slices.Contains(p.Args, "--insecure-no-auth") {
					t.Errorf("args %v", p.Args)
				}
				if l := securityLine(t, out, "authentication"); !strings.HasPrefix(l, "security: OFF ") {
					t.Errorf("authentication: %s", l)
				}
			},
		},
		"JWT only": {
			vals: merge(set("auth.adminToken.existingSecret", ""), set("auth.config", map[string]any{"jwt": map[string]any{
				"jwks_url": "https://idp.example.com/jwks.json", "issuer": "https://idp.example.com/", "audiences": []any{"switchyard"}}})),
			sec: defaultSecrets,
			check: func(t *testing.T, objs map[string]object, p pod, out string) {
				if l := securityLine(t, out, "authentication"); !strings.HasPrefix(l, "security: on ") {
					t.Errorf("authentication: %s", l)
				}
				d := get[*appsv1.Deployment](t, objs, "Deployment", "sy-switchyard")
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name == "admin-token" {
						t.Error("admin token volume without an admin token")
					}
				}
			},
		},
		"client certificate identities only": {
			vals: merge(set("auth.adminToken.existingSecret", ""), set("tls.existingSecret", "sy-tls"), set("tls.clientCA.existingSecret", "sy-tls"),
				set("auth.config", map[string]any{"mtls": map[string]any{"client_ca_file": "/etc/switchyard/client-ca/ca.crt"}})),
			sec: func(t *testing.T) secrets {
				s := defaultSecrets(t)
				c := newCerts(t, "sy-switchyard-http.events.svc")
				s["sy-tls"] = map[string][]byte{"tls.crt": c.Cert, "tls.key": c.Key, "ca.crt": c.CA}
				return s
			},
			check: func(t *testing.T, objs map[string]object, p pod, out string) {
				if l := securityLine(t, out, "authentication"); !strings.HasPrefix(l, "security: on ") {
					t.Errorf("authentication: %s", l)
				}
				if _, err := os.Stat(p.Root + "/etc/switchyard/client-ca/ca.crt"); err != nil {
					t.Errorf("the client CA is not where auth.mtls.client_ca_file says: %v", err)
				}
			},
		},
		"TLS without client CA, no preStop": {
			vals: merge(set("tls.existingSecret", "sy-tls"), set("shutdown.preStopSleepSeconds", 0), set("topologySpread.zones", "")),
			sec: func(t *testing.T) secrets {
				s := defaultSecrets(t)
				c := newCerts(t, "sy-switchyard-http.events.svc")
				s["sy-tls"] = map[string][]byte{"tls.crt": c.Cert, "tls.key": c.Key}
				return s
			},
			check: func(t *testing.T, objs map[string]object, p pod, _ string) {
				d := get[*appsv1.Deployment](t, objs, "Deployment", "sy-switchyard")
				c := d.Spec.Template.Spec.Containers[0]
				if c.Lifecycle != nil {
					t.Errorf("preStop %+v with preStopSleepSeconds 0", c.Lifecycle)
				}
				if n := len(d.Spec.Template.Spec.TopologySpreadConstraints); n != 1 {
					t.Errorf("%d topology spread constraints, want nodes only", n)
				}
				if _, ok := renderedConfig(t, p)["tls_client_ca_file"]; ok {
					t.Error("tls_client_ca_file without a client CA")
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := manifests(t, tc.vals)
			fullname := "sy-switchyard"
			checkInvariants(t, objs, fullname)
			p := layOut(t, objs, fullname, tc.sec(t))
			out := checkConfig(t, p, true)
			tc.check(t, objs, p, out)
		})
	}
}

// TestRefusals: values that would deploy something unsafe or broken do not
// render, and the error names the value to change.
func TestRefusals(t *testing.T) {
	webhook := func(secret string) map[string]any {
		return set("sources", []any{map[string]any{"name": "gh", "kind": "webhook", "fields": map[string]any{"secret": secret}}})
	}
	cases := map[string]struct {
		vals map[string]any
		want string
	}{
		"no identity":                    {set("auth.adminToken.existingSecret", ""), "auth.adminToken.existingSecret"},
		"no identity, told twice":        {merge(set("auth.insecureNoAuth", true)), "choose one"},
		"inline connector secret":        {webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "sources[0] (gh).fields.secret holds a secret itself"},
		"unset variable":                 {webhook("${GH_SECRET}"), "${GH_SECRET}, which no variable sets"},
		"secret with a default":          {merge(webhook("${GH_SECRET:-whsec_abc}"), set("secretEnv", []any{map[string]any{"name": "GH_SECRET", "secretName": "gh", "key": "s"}})), "holds a secret itself"},
		"credentials in the URL":         {set("redis.url", "redis://:hunter2@redis:6379/0"), "redis.url holds credentials"},
		"sentinel password in the URL":   {set("redis.url", "redis+sentinel://s:26379/m?sentinel_password=x"), "redis.sentinelPassword"},
		"sentinel password, no sentinel": {set("redis.sentinelPassword.existingSecret", "x"), "not a redis+sentinel"},
		"unknown scheme":                 {set("redis.url", "http://redis:6379"), `scheme "http"`},
		"no redis":                       {set("redis.url", ""), "/redis/url"},
		"chart-owned key":                {set("config.redis_url", "redis://elsewhere:6379"), "config.redis_url is set by the chart: use redis.url"},
		"chart-owned auth key":           {set("auth.config.admin_token_file", "/x"), "auth.adminToken.existingSecret"},
		"client auth require":            {merge(set("tls.existingSecret", "t"), set("tls.clientCA.existingSecret", "t"), set("tls.clientAuth", "require")), "kubelet"},
		"client CA without TLS":          {set("tls.clientCA.existingSecret", "t"), "needs tls.existingSecret"},
		"HPA and KEDA":                   {merge(set("autoscaling.enabled", true), set("keda.enabled", true)), "choose one"},
		"metrics without a token":        {set("serviceMonitor.enabled", true), "serviceMonitor.bearerToken.existingSecret"},
		"bad ack mode":                   {set("redis.ackAfter", "replicas=0"), "ackAfter"},
		"tracing without endpoint":       {set("tracing.enabled", true), "tracing.endpoint"},
		"unknown sampler":                {merge(set("tracing.enabled", true), set("tracing.endpoint", "http://c:4317"), set("tracing.sampler", "ratio")), "sampler"},
		"reserved variable":              {set("env", []any{map[string]any{"name": "SWITCHYARD_REDIS_URL", "value": "redis://x"}}), "SWITCHYARD_REDIS_URL is set by the chart"},
		"variable twice": {merge(set("env", []any{map[string]any{"name": "A", "value": "1"}}),
			set("secretEnv", []any{map[string]any{"name": "A", "secretName": "s", "key": "k"}})), "A is set twice"},
		"misspelt value":            {set("replicas", 3), "replicas"},
		"one replica zero":          {set("replicaCount", 0), "replicaCount"},
		"negative delay":            {set("shutdown.delaySeconds", -1), "delaySeconds"},
		"chart-owned dedup key":     {set("config.dedup_window", "5m"), "config.dedup_window is set by the chart: use dedupWindow"},
		"chart-owned archive key":   {set("config.archive_max_bytes", 1000), "config.archive_max_bytes is set by the chart: use archive.maxBytes"},
		"dedup window no duration":  {set("dedupWindow", "10 minutes"), "dedupWindow"},
		"negative archive size":     {set("archive.maxBytes", -1), "maxBytes"},
		"archive retention in days": {set("archive.retention", "7d"), "retention"},
		"misspelt archive value":    {set("archive.retentionDays", 7), "retentionDays"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, tc.vals)
			if err == nil {
				t.Fatalf("rendered; want an error naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestConfigChangeRollsPods: the pod template carries the configuration's
// checksum, so a change of configuration (sources included) rolls the pods.
func TestConfigChangeRollsPods(t *testing.T) {
	sum := func(vals map[string]any) string {
		d := get[*appsv1.Deployment](t, manifests(t, vals), "Deployment", "sy-switchyard")
		s := d.Spec.Template.Annotations["checksum/config"]
		if len(s) != 64 {
			t.Fatalf("checksum/config %q", s)
		}
		return s
	}
	a, b := sum(nil), sum(set("config.log_level", "debug"))
	if a == b || a != sum(nil) {
		t.Errorf("checksums %s, %s: want a change with the configuration only", a, b)
	}
}

// TestLint runs Helm's lint rules (those of helm lint) on the chart with the
// default and the full values: no error and no warning.
func TestLint(t *testing.T) {
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{"values.yaml": nil, "values-full.yaml": valuesFile(t, "values-full.yaml")} {
		res := lint.RunAll(chartDir, vals, namespace, lint.WithKubeVersion(kv))
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", name, m)
			} else {
				t.Logf("%s: %s", name, m)
			}
		}
	}
}

// TestChartVersionsAndDocs: the chart says what it is and its README names
// every top-level value.
func TestChartVersionsAndDocs(t *testing.T) {
	ch := loadChart(t)
	if ch.Metadata.APIVersion != "v2" || ch.Metadata.AppVersion == "" || ch.Metadata.KubeVersion == "" {
		t.Errorf("Chart.yaml %+v", ch.Metadata)
	}
	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range valuesFile(t, "values.yaml") {
		if !strings.Contains(string(readme), "`"+k) {
			t.Errorf("README.md does not mention the value %s", k)
		}
	}
}

// checkInvariants checks what every rendering must hold.
func checkInvariants(t *testing.T, objs map[string]object, fullname string) {
	t.Helper()
	for _, o := range objs {
		if o.Kind == "Secret" {
			t.Errorf("%s renders a Secret: credentials are referenced, never inlined", o.File)
		}
	}
	d := get[*appsv1.Deployment](t, objs, "Deployment", fullname)
	spec := d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels); !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: a pod stops only once its replacement is ready", d.Spec.Strategy.RollingUpdate)
	}

	// Security.
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod security context %+v", psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted (the server never calls the API)")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		len(sc.Capabilities.Add) != 0 || (sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("container security context %+v", sc)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440) {
			t.Errorf("secret volume %s mode %v, want 0440", v.Name, v.Secret.DefaultMode)
		}
	}
	tmp := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
	if tmp < 0 || volumes[c.VolumeMounts[tmp].Name].EmptyDir == nil || c.VolumeMounts[tmp].ReadOnly {
		t.Error("no writable emptyDir on /tmp beside the read-only root filesystem")
	}
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath: its files would never be updated", m.Name)
		}
	}

	// Probes.
	tls := false
	for _, v := range spec.Volumes {
		tls = tls || v.Name == "tls"
	}
	scheme := corev1.URISchemeHTTP
	if tls {
		scheme = corev1.URISchemeHTTPS
	}
	for name, pr := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || pr.p.HTTPGet.Port.String() != "http" || pr.p.HTTPGet.Scheme != scheme {
			t.Errorf("%s probe %+v, want %s %s on port http", name, pr.p, scheme, pr.path)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["grpc"] != 9090 {
		t.Errorf("container ports %v", ports)
	}

	// Services reach the pods on named ports.
	for _, svc := range []string{fullname + "-http", fullname + "-grpc"} {
		s := get[*corev1.Service](t, objs, "Service", svc)
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, not the pods %v", svc, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.String()]; !ok || p.AppProtocol == nil || *p.AppProtocol == "" {
				t.Errorf("Service %s port %+v: target is no container port, or no appProtocol", svc, p)
			}
		}
	}
	if pdb, ok := objs[key("PodDisruptionBudget", fullname)]; ok {
		sel := pdb.Obj.(*policyv1.PodDisruptionBudget).Spec.Selector
		if !labels.SelectorFromSet(sel.MatchLabels).Matches(podLabels) {
			t.Errorf("the PDB selects %v, not the pods", sel.MatchLabels)
		}
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.LabelSelector == nil || !labels.SelectorFromSet(tsc.LabelSelector.MatchLabels).Matches(podLabels) {
			t.Errorf("topology spread over %s selects other pods: %v", tsc.TopologyKey, tsc.LabelSelector)
		}
	}
	if np, ok := objs[key("NetworkPolicy", fullname)]; ok {
		if !labels.SelectorFromSet(np.Obj.(*networkingv1.NetworkPolicy).Spec.PodSelector.MatchLabels).Matches(podLabels) {
			t.Error("the NetworkPolicy selects other pods")
		}
	}

	// The configuration file is mounted where --config reads it.
	i := slices.Index(c.Args, "--config")
	if c.Args[0] != "serve" || i < 0 {
		t.Fatalf("args %v", c.Args)
	}
	cfgPath := c.Args[i+1]
	var cm *corev1.ConfigMap
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(cfgPath, m.MountPath+"/") && volumes[m.Name].ConfigMap != nil {
			cm = get[*corev1.ConfigMap](t, objs, "ConfigMap", volumes[m.Name].ConfigMap.Name)
			if _, ok := cm.Data[strings.TrimPrefix(cfgPath, m.MountPath+"/")]; !ok {
				t.Errorf("ConfigMap %s has no %s", cm.Name, cfgPath)
			}
		}
	}
	if cm == nil {
		t.Fatalf("--config %s is on no ConfigMap volume", cfgPath)
	}
	var file map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["switchyard.yaml"]), &file); err != nil {
		t.Fatal(err)
	}

	// Drain: the grace period covers the preStop sleep, the shutdown delay
	// and the shutdown timeout.
	dur := func(k string) int64 {
		s, _ := file[k].(string)
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return int64(d / time.Second)
	}
	var sleep int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("preStop %+v: the image has no shell, only the sleep action works", c.Lifecycle.PreStop)
		}
		sleep = c.Lifecycle.PreStop.Sleep.Seconds
	}
	if dur("shutdown_timeout") == 0 {
		t.Error("shutdown_timeout not rendered")
	}
	want := sleep + dur("shutdown_delay") + dur("shutdown_timeout") + 5
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds != want {
		t.Errorf("terminationGracePeriodSeconds %v, want %d (preStop %d + shutdown_delay + shutdown_timeout + 5)", spec.TerminationGracePeriodSeconds, want, sleep)
	}

	// Every ${VAR} without a default is set by the container's environment,
	// and nothing secret is a literal in it.
	env := envOf(c)
	for _, m := range regexp.MustCompile(`(?:^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(cm.Data["switchyard.yaml"], -1) {
		if _, ok := env[m[1]]; !ok && len(c.EnvFrom) == 0 {
			t.Errorf("the configuration uses ${%s}, which the container's environment does not set", m[1])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil && regexp.MustCompile(`(?i)password|secret|token|headers`).MatchString(e.Name) {
			t.Errorf("%s is a literal value in the Deployment", e.Name)
		}
	}
	for _, name := range []string{"SWITCHYARD_REDIS_PASSWORD", "SWITCHYARD_REDIS_SENTINEL_PASSWORD", "OTEL_EXPORTER_OTLP_HEADERS"} {
		if e, ok := env[name]; ok && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s is not from a Secret", name)
		}
	}
	if auth, ok := file["auth"].(map[string]any); ok {
		if p, ok := auth["admin_token_file"].(string); ok {
			found := false
			for _, m := range c.VolumeMounts {
				if strings.HasPrefix(p, m.MountPath+"/") && volumes[m.Name].Secret != nil {
					found = true
				}
			}
			if !found {
				t.Errorf("admin_token_file %s is on no Secret volume", p)
			}
		}
	}

	// Scalers target the Deployment.
	if hpa, ok := objs[key("HorizontalPodAutoscaler", fullname)]; ok {
		if r := hpa.Obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != fullname {
			t.Errorf("HPA targets %+v", r)
		}
	}
	if so, ok := objs[key("ScaledObject", fullname)]; ok {
		if r := so.Obj.(*ScaledObject).Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != fullname {
			t.Errorf("ScaledObject targets %+v", r)
		}
	}
}

// envOf returns a container's environment by name.
func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// renderedConfig reads the configuration file laid out for a pod.
func renderedConfig(t *testing.T, p pod) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(p.configPath(t))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

// readmeBlock returns the fenced block after <!-- test: name --> in the
// repository's README.md, its indentation removed (as internal/testenv's
// READMEBlock, which this module does not import).
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(repoRoot + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- test: "+name+" -->\n")
	if !ok {
		t.Fatalf("README.md has no <!-- test: %s --> marker", name)
	}
	lines := strings.Split(after, "\n")
	fence := strings.TrimLeft(lines[0], " ")
	indent := lines[0][:len(lines[0])-len(fence)]
	if !strings.HasPrefix(fence, "```") {
		t.Fatalf("README.md: the %s marker is not followed by a fenced block", name)
	}
	var body strings.Builder
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "```" {
			return body.String()
		}
		body.WriteString(strings.TrimPrefix(l, indent) + "\n")
	}
	t.Fatalf("README.md: the %s block is not closed", name)
	return ""
}

// TestREADMEValues: the README's example of sources with their secrets
// renders, and the server accepts the result.
func TestREADMEValues(t *testing.T) {
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(readmeBlock(t, "helm-sources")), &vals); err != nil {
		t.Fatal(err)
	}
	objs := manifests(t, vals)
	checkInvariants(t, objs, "sy-switchyard")
	sec := defaultSecrets(t)
	sec["github-webhook"] = map[string][]byte{"secret": []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	p := layOut(t, objs, "sy-switchyard", sec)
	if src, _ := renderedConfig(t, p)["sources"].([]any); len(src) != 1 {
		t.Fatalf("sources %v", src)
	}
	checkConfig(t, p, false)
}
