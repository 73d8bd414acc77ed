{{/* Names and labels. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; Services append -http and -grpc, so it stops at 58. */}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 58 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 58 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 58 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- end }}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.image" -}}
{{- $i := .Values.image }}
{{- if $i.digest }}
{{- printf "%s@%s" $i.repository $i.digest }}
{{- else }}
{{- printf "%s:%s" $i.repository (default .Chart.AppVersion $i.tag) }}
{{- end }}
{{- end }}

{{/* Where the pod finds its files. */}}
{{- define "switchyard.paths" -}}
config: /etc/switchyard/config/switchyard.yaml
adminToken: /etc/switchyard/admin/token
tlsCert: /etc/switchyard/tls/tls.crt
tlsKey: /etc/switchyard/tls/tls.key
clientCA: /etc/switchyard/client-ca/ca.crt
{{- end }}

{{/* Whether TLS is on the listeners: "true" or "". */}}
{{- define "switchyard.tls" -}}
{{- if .Values.tls.existingSecret }}true{{ end }}
{{- end }}

{{/*
Whether an identity is configured, as the server decides (auth.Config.Enabled):
the admin token, a JWKS, or a client CA for mTLS identities. "true" or "".
*/}}
{{- define "switchyard.authOn" -}}
{{- $c := .Values.auth.config | default dict }}
{{- $jwt := get $c "jwt" | default dict }}
{{- $mtls := get $c "mtls" | default dict }}
{{- if or .Values.auth.adminToken.existingSecret (get $jwt "jwks_url") (get $jwt "jwks_file") (get $mtls "client_ca_file") }}true{{ end }}
{{- end }}

{{/*
The Redis URL with its credentials as ${VAR} references, expanded by the
server from the environment the Deployment fills from Secrets.
*/}}
{{- define "switchyard.redisURL" -}}
{{- $r := .Values.redis }}
{{- $u := required "redis.url is required: Switchyard replicas share their state through Redis" $r.url }}
{{- $parts := regexSplit "://" $u 2 }}
{{- if ne (len $parts) 2 }}
{{- fail (printf "redis.url %q: want SCHEME://HOST:PORT…" $u) }}
{{- end }}
{{- $scheme := index $parts 0 }}
{{- $rest := index $parts 1 }}
{{- $schemes := list "redis" "rediss" "redis+cluster" "rediss+cluster" "redis+sentinel" "rediss+sentinel" }}
{{- if not (has $scheme $schemes) }}
{{- fail (printf "redis.url %q: scheme %q is none of %s" $u $scheme (join ", " $schemes)) }}
{{- end }}
{{- $authority := regexReplaceAll "[/?].*$" $rest "" }}
{{- if contains "@" $authority }}
{{- fail "redis.url holds credentials: set redis.username and the Secret redis.password instead" }}
{{- end }}
{{- if contains "sentinel_password" $rest }}
{{- fail "redis.url holds sentinel_password: set the Secret redis.sentinelPassword instead" }}
{{- end }}
{{- $user := $r.username | default "" }}
{{- $userinfo := "" }}
{{- if $r.password.existingSecret }}
{{- $userinfo = printf "%s:${SWITCHYARD_REDIS_PASSWORD}@" $user }}
{{- else if $user }}
{{- $userinfo = printf "%s@" $user }}
{{- end }}
{{- $out := printf "%s://%s%s" $scheme $userinfo $rest }}
{{- if $r.sentinelPassword.existingSecret }}
{{- if not (hasSuffix "sentinel" $scheme) }}
{{- fail "redis.sentinelPassword is set but redis.url is not a redis+sentinel:// or rediss+sentinel:// URL" }}
{{- end }}
{{- $sep := ternary "&" "?" (contains "?" $rest) }}
{{- $out = printf "%s%ssentinel_password=${SWITCHYARD_REDIS_SENTINEL_PASSWORD}" $out $sep }}
{{- end }}
{{- $out }}
{{- end }}

{{/*
The server's configuration file (docs/config.md), from values. Keys the
chart sets itself may not come from .Values.config.
*/}}
{{- define "switchyard.config" -}}
{{- $paths := include "switchyard.paths" . | fromYaml }}
{{- $c := deepCopy (.Values.config | default dict) }}
{{- $owned := dict
  "http_addr" "(the chart listens on :8080; service.http.port is the Service's)"
  "grpc_addr" "(the chart listens on :9090; service.grpc.port is the Service's)"
  "redis_url" "redis.url"
  "redis_cluster" "redis.url (redis+cluster://)"
  "ack_after" "redis.ackAfter"
  "ack_timeout" "redis.ackTimeout"
  "shutdown_timeout" "shutdown.timeoutSeconds"
  "shutdown_delay" "shutdown.delaySeconds"
  "tls_cert_file" "tls.existingSecret"
  "tls_key_file" "tls.existingSecret"
  "tls_client_ca_file" "tls.clientCA.existingSecret"
  "tls_client_auth" "tls.clientAuth"
  "dedup_window" "dedupWindow"
  "max_dedup_window" "maxDedupWindow"
  "max_deliver_after" "maxDeliverAfter"
  "archive_retention" "archive.retention"
  "archive_max_bytes" "archive.maxBytes"
  "auth" "auth.config"
  "sources" "sources" }}
{{- range $k := keys $owned | sortAlpha }}
{{- if hasKey $c $k }}
{{- fail (printf "config.%s is set by the chart: use %s" $k (get $owned $k)) }}
{{- end }}
{{- end }}
{{- $_ := set $c "http_addr" ":8080" }}
{{- $_ = set $c "grpc_addr" ":9090" }}
{{- $_ = set $c "redis_url" (include "switchyard.redisURL" .) }}
{{- $_ = set $c "shutdown_timeout" (printf "%ds" (int .Values.shutdown.timeoutSeconds)) }}
{{- if gt (int .Values.shutdown.delaySeconds) 0 }}
{{- $_ = set $c "shutdown_delay" (printf "%ds" (int .Values.shutdown.delaySeconds)) }}
{{- end }}
{{- with .Values.redis.ackAfter }}
{{- $_ = set $c "ack_after" . }}
{{- end }}
{{- with .Values.redis.ackTimeout }}
{{- $_ = set $c "ack_timeout" . }}
{{- end }}
{{- with .Values.dedupWindow }}
{{- $_ = set $c "dedup_window" . }}
{{- end }}
{{- with .Values.maxDedupWindow }}
{{- $_ = set $c "max_dedup_window" . }}
{{- end }}
{{- with .Values.maxDeliverAfter }}
{{- $_ = set $c "max_deliver_after" . }}
{{- end }}
{{- with .Values.archive.retention }}
{{- $_ = set $c "archive_retention" . }}
{{- end }}
{{- if gt (int64 .Values.archive.maxBytes) 0 }}
{{- $_ = set $c "archive_max_bytes" (int64 .Values.archive.maxBytes) }}
{{- end }}
{{- if include "switchyard.tls" . }}
{{- $_ = set $c "tls_cert_file" $paths.tlsCert }}
{{- $_ = set $c "tls_key_file" $paths.tlsKey }}
{{- if .Values.tls.clientCA.existingSecret }}
{{- $_ = set $c "tls_client_ca_file" $paths.clientCA }}
{{- $_ = set $c "tls_client_auth" .Values.tls.clientAuth }}
{{- end }}
{{- end }}
{{- $auth := deepCopy (.Values.auth.config | default dict) }}
{{- if hasKey $auth "admin_token_file" }}
{{- fail "auth.config.admin_token_file is set by the chart: use auth.adminToken.existingSecret" }}
{{- end }}
{{- if .Values.auth.adminToken.existingSecret }}
{{- $_ = set $auth "admin_token_file" $paths.adminToken }}
{{- end }}
{{- if $auth }}
{{- $_ = set $c "auth" $auth }}
{{- end }}
{{- with .Values.sources }}
{{- $_ = set $c "sources" . }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* Seconds from a pod's deletion until the kubelet kills it. */}}
{{- define "switchyard.terminationGracePeriod" -}}
{{- add (int .Values.shutdown.preStopSleepSeconds) (int .Values.shutdown.delaySeconds) (int .Values.shutdown.timeoutSeconds) 5 }}
{{- end }}

{{/* Names of the environment variables the container gets from the chart and values. */}}
{{- define "switchyard.envNames" -}}
{{- $names := list "POD_NAME" "POD_NAMESPACE" }}
{{- if .Values.redis.password.existingSecret }}{{ $names = append $names "SWITCHYARD_REDIS_PASSWORD" }}{{ end }}
{{- if .Values.redis.sentinelPassword.existingSecret }}{{ $names = append $names "SWITCHYARD_REDIS_SENTINEL_PASSWORD" }}{{ end }}
{{- range .Values.secretEnv }}{{ $names = append $names .name }}{{ end }}
{{- range .Values.env }}{{ $names = append $names .name }}{{ end }}
{{- toJson $names }}
{{- end }}
