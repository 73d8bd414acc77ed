{{/*
Refuses values that would deploy something unsafe or broken, each with the
value to change. Included once, by configmap.yaml.
*/}}
{{- define "switchyard.validate" -}}
{{- $authOn := include "switchyard.authOn" . }}
{{- if and (not $authOn) (not .Values.auth.insecureNoAuth) }}
{{- fail "authentication is off: set auth.adminToken.existingSecret to a Secret holding the bootstrap admin token (or configure auth.config.jwt or auth.config.mtls); auth.insecureNoAuth=true serves without authentication" }}
{{- end }}
{{- if and $authOn .Values.auth.insecureNoAuth }}
{{- fail "auth.insecureNoAuth is true but an identity is configured (auth.adminToken, auth.config): choose one" }}
{{- end }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount must be 1 or more" }}
{{- end }}
{{- range $k := list "timeoutSeconds" "delaySeconds" "preStopSleepSeconds" }}
{{- if lt (int (get $.Values.shutdown $k)) 0 }}
{{- fail (printf "shutdown.%s must not be negative" $k) }}
{{- end }}
{{- end }}
{{- if lt (int .Values.shutdown.timeoutSeconds) 1 }}
{{- fail "shutdown.timeoutSeconds must be 1 or more" }}
{{- end }}
{{- with .Values.redis.ackAfter }}
{{- if not (regexMatch "^(write|replicas=[1-9][0-9]*)$" .) }}
{{- fail (printf "redis.ackAfter %q: want write or replicas=N" .) }}
{{- end }}
{{- end }}
{{- if not (has .Values.tls.clientAuth (list "request" "require")) }}
{{- fail (printf "tls.clientAuth %q: want request or require" .Values.tls.clientAuth) }}
{{- end }}
{{- if and .Values.tls.clientCA.existingSecret (eq .Values.tls.clientAuth "require") }}
{{- fail "tls.clientAuth=require: the kubelet's HTTPS probes present no client certificate, so every pod would fail them; use request (callers without a certificate then need a token)" }}
{{- end }}
{{- if and .Values.tls.clientCA.existingSecret (not .Values.tls.existingSecret) }}
{{- fail "tls.clientCA.existingSecret needs tls.existingSecret (client certificates are asked for over TLS)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled both scale the Deployment: choose one (keda scales on CPU too, keda.cpuUtilization)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled $authOn (not .Values.serviceMonitor.bearerToken.existingSecret) }}
{{- fail "serviceMonitor.enabled with authentication on: /metrics needs a viewer's token; create one (switchyard token create --name prometheus --role viewer), put it in a Secret and set serviceMonitor.bearerToken.existingSecret" }}
{{- end }}
{{- if .Values.tracing.enabled }}
{{- if not .Values.tracing.endpoint }}
{{- fail "tracing.enabled needs tracing.endpoint (the OTLP collector)" }}
{{- end }}
{{- if not (has .Values.tracing.protocol (list "grpc" "http/protobuf")) }}
{{- fail (printf "tracing.protocol %q: want grpc or http/protobuf" .Values.tracing.protocol) }}
{{- end }}
{{- $samplers := list "always_on" "always_off" "traceidratio" "parentbased_always_on" "parentbased_always_off" "parentbased_traceidratio" }}
{{- if not (has .Values.tracing.sampler $samplers) }}
{{- fail (printf "tracing.sampler %q: want one of %s" .Values.tracing.sampler (join ", " $samplers)) }}
{{- end }}
{{- end }}
{{- $reserved := list "POD_NAME" "POD_NAMESPACE" "SWITCHYARD_REDIS_PASSWORD" "SWITCHYARD_REDIS_SENTINEL_PASSWORD" "SWITCHYARD_ADMIN_TOKEN" "SWITCHYARD_REDIS_URL" "OTEL_TRACES_EXPORTER" "OTEL_EXPORTER_OTLP_ENDPOINT" "OTEL_EXPORTER_OTLP_PROTOCOL" "OTEL_EXPORTER_OTLP_HEADERS" "OTEL_TRACES_SAMPLER" "OTEL_TRACES_SAMPLER_ARG" "OTEL_SERVICE_NAME" "OTEL_RESOURCE_ATTRIBUTES" }}
{{- $seen := dict }}
{{- range $i, $e := concat .Values.secretEnv .Values.env }}
{{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_]*$" ($e.name | default "")) }}
{{- fail (printf "env/secretEnv: %q is not a variable name" ($e.name | default "")) }}
{{- end }}
{{- if has $e.name $reserved }}
{{- fail (printf "env/secretEnv: %s is set by the chart (see redis, auth and tracing)" $e.name) }}
{{- end }}
{{- if hasKey $seen $e.name }}
{{- fail (printf "env/secretEnv: %s is set twice" $e.name) }}
{{- end }}
{{- $_ := set $seen $e.name true }}
{{- end }}
{{- range .Values.secretEnv }}
{{- if not (and .secretName .key) }}
{{- fail (printf "secretEnv %s: needs secretName and key" .name) }}
{{- end }}
{{- end }}
{{- /* Connector secrets are referenced, never inlined. */}}
{{- $secretFields := .Files.Get "files/secret-fields.yaml" | fromYaml }}
{{- range $i, $s := .Values.sources }}
{{- $fields := $s.fields | default dict }}
{{- range $f := get $secretFields ($s.kind | default "") | default list }}
{{- $v := get $fields $f | default "" | toString }}
{{- if and $v (not (regexMatch "(^|[^$])\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" $v)) }}
{{- fail (printf "sources[%d] (%s).fields.%s holds a secret itself: put it in a Secret, list it under secretEnv and write ${VAR}" $i ($s.name | default "") $f) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Every ${VAR} without a default must be set, or the server refuses the file. */}}
{{- if not .Values.envFrom }}
{{- $names := include "switchyard.envNames" . | fromJsonArray }}
{{- range $m := regexFindAll "(^|[^$])\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" (include "switchyard.config" .) -1 }}
{{- $n := regexReplaceAll "^.*\\$\\{([A-Za-z_][A-Za-z0-9_]*)\\}$" $m "${1}" }}
{{- if not (has $n $names) }}
{{- fail (printf "the config file references ${%s}, which no variable sets: add it to secretEnv (or env)" $n) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
