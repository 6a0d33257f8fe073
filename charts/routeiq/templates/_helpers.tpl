{{/*
Names. They do not depend on .Chart, so the sidecar helpers below also work when another chart
includes them with (dict "Values" .Values.routeiq "Release" .Release).
*/}}
{{- define "routeiq.name" -}}
{{- default "routeiq" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "routeiq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "routeiq.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "routeiq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "routeiq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "routeiq.labels" -}}
{{ include "routeiq.baseLabels" . }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{/* The labels without app.kubernetes.io/component, for an object that names its own. */}}
{{- define "routeiq.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "routeiq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "routeiq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "routeiq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* repository@digest, else repository:tag, the tag defaulting to the chart's appVersion.
Takes (dict "image" <repository, tag, digest> "appVersion" <string> "key" <values path>). */ -}}
{{- define "routeiq.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (required (printf "%s.tag is required when the chart's appVersion is not at hand" .key) (.image.tag | default .appVersion)) }}
{{- end }}
{{- end }}

{{- define "routeiq.image" -}}
{{- $appVersion := "" }}
{{- with .Chart }}{{ $appVersion = .AppVersion }}{{ end }}
{{- include "routeiq.imageRef" (dict "image" .Values.image "appVersion" $appVersion "key" "image") }}
{{- end }}

{{- define "routeiq.litellmImage" -}}
{{- include "routeiq.imageRef" (dict "image" .Values.litellm.image "appVersion" .Chart.AppVersion "key" "litellm.image") }}
{{- end }}

{{- define "routeiq.routingConfigMap" -}}
{{- .Values.routing.existingConfigMap | default (printf "%s-routing" (include "routeiq.fullname" .)) }}
{{- end }}

{{- define "routeiq.hasRouting" -}}
{{- if or .Values.routing.existingConfigMap .Values.routing.catalog .Values.routing.profiles .Values.routing.prototypes .Values.routing.tenants }}true{{ end }}
{{- end }}

{{- define "routeiq.podReplicasAboveOne" -}}
{{- if .Values.autoscaling.enabled }}{{ if gt (int .Values.autoscaling.minReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/*
The RouteIQ container. Context: a dict with Values, Release, and "host" (the listen address:
0.0.0.0 for a shared Service, 127.0.0.1 beside LiteLLM in the same pod).
*/}}
{{- define "routeiq.container" -}}
{{- $v := .Values -}}
name: routeiq
image: {{ include "routeiq.image" . }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args: ["serve"]
{{- $metricsPort := and (eq .host "127.0.0.1") (($v.monitoring | default dict).sidecarMetricsPort) }}
ports:
  - name: http
    containerPort: {{ $v.port }}
    protocol: TCP
  {{- if $metricsPort }}
  - name: routeiq-metrics
    containerPort: {{ $metricsPort }}
    protocol: TCP
  {{- end }}
env:
  - {name: ROUTEIQ_HOST, value: {{ .host | quote }}}
  {{- if $metricsPort }}
  # /route stays on loopback; only /metrics is on the pod IP, for the scraper.
  - {name: ROUTEIQ_METRICS_PORT, value: {{ $metricsPort | quote }}}
  {{- end }}
  - {name: ROUTEIQ_PORT, value: {{ $v.port | quote }}}
  - {name: ROUTEIQ_WORKERS, value: {{ $v.config.workers | quote }}}
  - {name: ROUTEIQ_DEFAULT_PROFILE, value: {{ $v.config.defaultProfile | quote }}}
  - {name: ROUTEIQ_STRATEGY, value: {{ $v.config.strategy | quote }}}
  - {name: ROUTEIQ_INFERENCE_THREADS, value: {{ $v.config.inferenceThreads | quote }}}
  - {name: ROUTEIQ_TOKEN_BUDGET, value: {{ $v.config.tokenBudget | quote }}}
  - {name: ROUTEIQ_MAX_CONCURRENT_REQUESTS, value: {{ $v.config.maxConcurrentRequests | quote }}}
  - {name: ROUTEIQ_LOG_LEVEL, value: {{ $v.config.logLevel | quote }}}
  - {name: ROUTEIQ_NAMESPACE, value: {{ $v.config.namespace | quote }}}
  - {name: ROUTEIQ_DRAIN_DELAY_SECONDS, value: {{ $v.config.drainDelaySeconds | quote }}}
  - {name: ROUTEIQ_DRAIN_TIMEOUT_SECONDS, value: {{ $v.config.drainTimeoutSeconds | quote }}}
  {{- if or $v.routing.existingConfigMap $v.routing.catalog }}
  - {name: ROUTEIQ_CATALOG_FILE, value: /etc/routeiq/catalog.yaml}
  {{- end }}
  {{- if or $v.routing.existingConfigMap $v.routing.profiles }}
  - {name: ROUTEIQ_PROFILES_FILE, value: /etc/routeiq/profiles.yaml}
  {{- end }}
  {{- if or $v.routing.existingConfigMap $v.routing.prototypes }}
  - {name: ROUTEIQ_PROTOTYPES_FILE, value: /etc/routeiq/prototypes.yaml}
  {{- end }}
  {{- if and $v.routing.tenants (not $v.routing.existingConfigMap) }}
  - {name: ROUTEIQ_TENANTS_FILE, value: /etc/routeiq/tenants.yaml}
  {{- end }}
  {{- if $v.auth.existingSecret }}
  - name: ROUTEIQ_AUTH_TOKENS_FILE
    value: /etc/routeiq-auth/{{ $v.auth.tokensKey }}
  {{- end }}
  {{- if $v.adminKey.existingSecret }}
  - name: ROUTEIQ_ADMIN_KEY
    valueFrom:
      secretKeyRef: {name: {{ $v.adminKey.existingSecret | quote }}, key: {{ $v.adminKey.key | quote }}}
  {{- end }}
  {{- if $v.redis.enabled }}
  {{- if $v.redis.sentinels }}
  - {name: ROUTEIQ_REDIS_SENTINELS, value: {{ $v.redis.sentinels | quote }}}
  - {name: ROUTEIQ_REDIS_SENTINEL_SERVICE, value: {{ $v.redis.sentinelService | quote }}}
  {{- if $v.redis.sentinelPasswordKey }}
  - name: ROUTEIQ_REDIS_SENTINEL_PASSWORD
    valueFrom:
      secretKeyRef: {name: {{ required "redis.existingSecret is required for redis.sentinelPasswordKey" $v.redis.existingSecret | quote }}, key: {{ $v.redis.sentinelPasswordKey | quote }}}
  {{- end }}
  {{- end }}
  {{- if $v.redis.passwordKey }}
  - name: ROUTEIQ_REDIS_PASSWORD
    valueFrom:
      secretKeyRef: {name: {{ required "redis.existingSecret is required for redis.passwordKey" $v.redis.existingSecret | quote }}, key: {{ $v.redis.passwordKey | quote }}}
  {{- else if or $v.redis.existingSecret (not $v.redis.sentinels) }}
  - name: ROUTEIQ_REDIS_URL
    valueFrom:
      secretKeyRef: {name: {{ required "redis.existingSecret is required when redis.enabled (or set redis.sentinels)" $v.redis.existingSecret | quote }}, key: {{ $v.redis.urlKey | quote }}}
  {{- end }}
  {{- end }}
  {{- range $name, $value := $v.config.extraEnv }}
  - {name: {{ $name | quote }}, value: {{ $value | quote }}}
  {{- end }}
startupProbe:
  {{- toYaml $v.probes.startup | nindent 2 }}
readinessProbe:
  {{- toYaml $v.probes.readiness | nindent 2 }}
livenessProbe:
  {{- toYaml $v.probes.liveness | nindent 2 }}
{{- if gt (int $v.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    exec: {command: ["sleep", {{ $v.preStopSleepSeconds | quote }}]}
{{- end }}
resources:
  {{- toYaml $v.resources | nindent 2 }}
securityContext:
  {{- toYaml $v.containerSecurityContext | nindent 2 }}
volumeMounts:
  - {name: routeiq-tmp, mountPath: /tmp}
  {{- if include "routeiq.hasRouting" . }}
  - {name: routeiq-routing, mountPath: /etc/routeiq, readOnly: true}
  {{- end }}
  {{- if $v.auth.existingSecret }}
  - {name: routeiq-auth, mountPath: /etc/routeiq-auth, readOnly: true}
  {{- end }}
{{- end }}

{{/*
Volumes the RouteIQ container mounts. Context: as for routeiq.container.
*/}}
{{- define "routeiq.volumes" -}}
- name: routeiq-tmp
  emptyDir: {medium: Memory, sizeLimit: 64Mi}
{{- if include "routeiq.hasRouting" . }}
- name: routeiq-routing
  configMap: {name: {{ include "routeiq.routingConfigMap" . }}}
{{- end }}
{{- if .Values.auth.existingSecret }}
- name: routeiq-auth
  secret: {secretName: {{ .Values.auth.existingSecret | quote }}, defaultMode: 0440}
{{- end }}
{{- end }}

{{/*
routeiq.sidecarContainer: the RouteIQ container for a LiteLLM pod, listening on 127.0.0.1 only
(nothing outside the pod can reach it, so it needs no token). Put it under `initContainers:`
when sidecar.native (it carries restartPolicy: Always) or under `containers:` otherwise, and add
`include "routeiq.sidecarVolumes"` to the pod's volumes. From another chart that depends on this
one (alias routeiq, values under `routeiq:`):
  initContainers:
    - {{- include "routeiq.sidecarContainer" (dict "Values" .Values.routeiq "Release" .Release) | nindent 6 }}
  volumes:
    {{- include "routeiq.sidecarVolumes" (dict "Values" .Values.routeiq "Release" .Release) | nindent 4 }}
*/}}
{{- define "routeiq.sidecarContainer" -}}
{{- $ctx := dict "Values" .Values "Release" .Release "host" "127.0.0.1" }}
{{- with .Chart }}{{ $_ := set $ctx "Chart" . }}{{ end }}
{{- include "routeiq.container" $ctx }}
{{- if .Values.sidecar.native }}
restartPolicy: Always
{{- end }}
{{- end }}

{{- define "routeiq.sidecarVolumes" -}}
{{- include "routeiq.volumes" . }}
{{- end }}

{{- define "routeiq.topologySpread" -}}
{{- if .Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "routeiq.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod-level scheduling and security shared by both modes. */}}
{{- define "routeiq.podCommon" -}}
serviceAccountName: {{ include "routeiq.serviceAccountName" . }}
automountServiceAccountToken: false
# No *_SERVICE_HOST / *_PORT variables per Service: a Service named routeiq-<x> would inject
# ROUTEIQ_<X>_PORT=tcp://... into the ROUTEIQ_* namespace the service reads.
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- $shutdown := add (int .Values.preStopSleepSeconds) (int .Values.config.drainDelaySeconds) (int .Values.config.drainTimeoutSeconds) 5 }}
{{- if lt (int .Values.terminationGracePeriodSeconds) $shutdown }}
{{- fail (printf "terminationGracePeriodSeconds=%v is shorter than a clean shutdown: preStopSleepSeconds (%v) + config.drainDelaySeconds (%v) + config.drainTimeoutSeconds (%v) + 5 s = %v" .Values.terminationGracePeriodSeconds .Values.preStopSleepSeconds .Values.config.drainDelaySeconds .Values.config.drainTimeoutSeconds $shutdown) }}
{{- end }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- include "routeiq.topologySpread" . }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
