{{/* Chart name, or nameOverride; also the app.kubernetes.io/name label and the Prometheus job. */}}
{{- define "prom-metrics-app.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full object name, truncated to 63 characters (DNS label limit). */}}
{{- define "prom-metrics-app.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "prom-metrics-app.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: only the two that never change for a release, since selectors are immutable. */}}
{{- define "prom-metrics-app.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prom-metrics-app.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels shared by every object of the release, the downstream's included. */}}
{{- define "prom-metrics-app.sharedLabels" -}}
{{- /* A tag may hold characters a label value cannot (a digest's ':'). */ -}}
app.kubernetes.io/version: {{ regexReplaceAll "[^-A-Za-z0-9_.]" (.Values.image.tag | default .Chart.AppVersion) "_" | trunc 63 | trimAll "-_." | quote }}
app.kubernetes.io/part-of: prom-metrics-app
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels shared by every object of the app, pods included. */}}
{{- define "prom-metrics-app.commonLabels" -}}
{{ include "prom-metrics-app.sharedLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Pod labels: no helm.sh/chart, so a chart-only upgrade does not restart the pods. */}}
{{- define "prom-metrics-app.podLabels" -}}
{{ include "prom-metrics-app.selectorLabels" . }}
{{ include "prom-metrics-app.commonLabels" . }}
{{- end }}

{{/* Labels of every object other than pods. */}}
{{- define "prom-metrics-app.labels" -}}
helm.sh/chart: {{ include "prom-metrics-app.chart" . }}
{{ include "prom-metrics-app.podLabels" . }}
{{- end }}

{{/* Name of the downstream's Deployment and Service, and the host of its URL; the suffix is kept
whole within the 63-character limit. */}}
{{- define "prom-metrics-app.downstreamFullname" -}}
{{- printf "%s-downstream" (include "prom-metrics-app.fullname" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{/* The downstream's app.kubernetes.io/name label, and so its Prometheus job. */}}
{{- define "prom-metrics-app.downstreamName" -}}
{{- printf "%s-downstream" (include "prom-metrics-app.name" . | trunc 52 | trimSuffix "-") }}
{{- end }}

{{/*
Selector labels of the downstream. Its name label differs from the app's, so that neither Service
selects the other's pods: the app's selector, immutable since the first install, matches every
pod of the release that carries the app's name.
*/}}
{{- define "prom-metrics-app.downstreamSelectorLabels" -}}
app.kubernetes.io/name: {{ include "prom-metrics-app.downstreamName" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "prom-metrics-app.downstreamPodLabels" -}}
{{ include "prom-metrics-app.downstreamSelectorLabels" . }}
{{ include "prom-metrics-app.sharedLabels" . }}
app.kubernetes.io/component: downstream
{{- end }}

{{- define "prom-metrics-app.downstreamLabels" -}}
helm.sh/chart: {{ include "prom-metrics-app.chart" . }}
{{ include "prom-metrics-app.downstreamPodLabels" . }}
{{- end }}

{{/* Base URL of the downstream's Service, the app's DOWNSTREAM_URL unless config.downstreamUrl is set. */}}
{{- define "prom-metrics-app.downstreamUrl" -}}
{{- printf "http://%s:%d" (include "prom-metrics-app.downstreamFullname" .) (int .Values.service.port) }}
{{- end }}

{{/* The app's settings: `config`, with DOWNSTREAM_URL pointing at the downstream when it is deployed. */}}
{{- define "prom-metrics-app.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if and .Values.downstream.enabled (not $config.downstreamUrl) }}
{{- $_ := set $config "downstreamUrl" (include "prom-metrics-app.downstreamUrl" .) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The downstream's settings: `downstream.config` over `config`, value by value (an empty value
inherits). Its faults and its own downstreams are never inherited: the point of the downstream is
to fail, or not, on its own, and the app's downstream list (by default the downstream itself)
would make it call itself. Nor are the synthetic series: a load test sized for the app would
otherwise double. Its service name defaults to the app's plus "-downstream", so that
traces and /chain's report tell the two apart.
*/}}
{{- define "prom-metrics-app.downstreamConfig" -}}
{{- $own := .Values.downstream.config | default dict }}
{{- $config := omit (deepCopy .Values.config) "downstreamUrl" "chaos" "otel" "synthetic" }}
{{- $otel := omit (deepCopy (.Values.config.otel | default dict)) "serviceName" }}
{{- range $key, $value := $own }}
{{- if and (ne $key "otel") (ne $key "chaos") (ne $key "synthetic") (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- end }}
{{- range $key, $value := ($own.otel | default dict) }}
{{- if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
{{- $_ := set $otel $key $value }}
{{- end }}
{{- end }}
{{- if not $otel.serviceName }}
{{- $_ := set $otel "serviceName" (printf "%s-downstream" (.Values.config.otel.serviceName | default "prom-metrics-app")) }}
{{- end }}
{{- $_ := set $config "otel" $otel }}
{{- $_ := set $config "chaos" ($own.chaos | default dict) }}
{{- $_ := set $config "synthetic" ($own.synthetic | default dict) }}
{{- toYaml $config }}
{{- end }}

{{- define "prom-metrics-app.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prom-metrics-app.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "prom-metrics-app.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Name of the Secret holding OTEL_EXPORTER_OTLP_HEADERS, or "" when there is none. */}}
{{- define "prom-metrics-app.otlpHeadersSecret" -}}
{{- if .Values.otlpHeaders.existingSecret }}
{{- .Values.otlpHeaders.existingSecret }}
{{- else if .Values.otlpHeaders.value }}
{{- printf "%s-otlp-headers" (include "prom-metrics-app.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The settings of one instance as [variable, value] pairs, in the order of docs/configuration.md, from a dict:
config (the `config` values in force), where (their place in values.yaml, for error messages) and
root. An empty value leaves the variable out, so the app's own default applies.
*/}}
{{- define "prom-metrics-app.settings" -}}
{{- $c := .config }}
{{- $o := $c.otel | default dict }}
{{- $k := $c.chaos | default dict }}
{{- $y := $c.synthetic | default dict }}
{{- include "prom-metrics-app.checkChaos" (dict "chaos" $k "where" (printf "%s.chaos" .where)) }}
{{- $pairs := list
  (list "METRICS_BACKEND" $c.metricsBackend)
  (list "NATIVE_HISTOGRAM_BUCKET_FACTOR" $c.nativeHistogramBucketFactor)
  (list "OTEL_EXPORTER" $o.exporter)
  (list "CONSOLE_FORMAT" $o.consoleFormat)
  (list "OTEL_EXPORTER_OTLP_ENDPOINT" $o.exporterOtlpEndpoint)
  (list "OTEL_EXPORTER_OTLP_INSECURE" $o.exporterOtlpInsecure)
  (list "OTEL_EXPORTER_OTLP_PROTOCOL" $o.exporterOtlpProtocol)
  (list "OTEL_EXPORTER_OTLP_TIMEOUT" $o.exporterOtlpTimeout)
  (list "OTEL_TRACES_EXPORTER" $o.tracesExporter)
  (list "OTEL_METRICS_EXPORTER" $o.metricsExporter)
  (list "OTEL_LOGS_EXPORTER" $o.logsExporter)
  (list "OTEL_SDK_DISABLED" $o.sdkDisabled)
  (list "OTEL_EXPORTER_OTLP_COMPRESSION" $o.exporterOtlpCompression)
  (list "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" $o.exporterOtlpTracesEndpoint)
  (list "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" $o.exporterOtlpTracesProtocol)
  (list "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" $o.exporterOtlpMetricsEndpoint)
  (list "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL" $o.exporterOtlpMetricsProtocol)
  (list "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" $o.exporterOtlpLogsEndpoint)
  (list "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL" $o.exporterOtlpLogsProtocol)
  (list "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE" $o.metricsTemporalityPreference)
  (list "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION" $o.metricsDefaultHistogramAggregation)
  (list "EXPONENTIAL_HISTOGRAM_MAX_SIZE" $o.exponentialHistogramMaxSize)
  (list "EXPONENTIAL_HISTOGRAM_MAX_SCALE" $o.exponentialHistogramMaxScale)
  (list "OTEL_METRIC_EXPORT_TIMEOUT" $o.metricExportTimeout)
  (list "OTEL_BSP_SCHEDULE_DELAY" $o.bspScheduleDelay)
  (list "OTEL_BSP_EXPORT_TIMEOUT" $o.bspExportTimeout)
  (list "OTEL_BSP_MAX_QUEUE_SIZE" $o.bspMaxQueueSize)
  (list "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" $o.bspMaxExportBatchSize)
  (list "OTEL_BLRP_SCHEDULE_DELAY" $o.blrpScheduleDelay)
  (list "OTEL_BLRP_EXPORT_TIMEOUT" $o.blrpExportTimeout)
  (list "OTEL_BLRP_MAX_QUEUE_SIZE" $o.blrpMaxQueueSize)
  (list "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE" $o.blrpMaxExportBatchSize)
  (list "OTEL_ATTRIBUTE_COUNT_LIMIT" $o.attributeCountLimit)
  (list "OTEL_TRACES_SAMPLER" $o.tracesSampler)
  (list "OTEL_TRACES_SAMPLER_ARG" $o.tracesSamplerArg)
  (list "OTEL_METRIC_EXPORT_INTERVAL" $o.metricExportInterval)
  (list "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" $o.attributeValueLengthLimit)
  (list "OTEL_PROPAGATORS" $o.propagators)
  (list "OTEL_SERVICE_NAME" $o.serviceName)
  (list "OTEL_RESOURCE_ATTRIBUTES" $o.resourceAttributes)
  (list "LOG_TO_STDOUT" $c.logToStdout)
  (list "RUST_LOG" $c.logLevel)
  (list "TRACES_EXCLUDED_PATHS" $c.tracesExcludedPaths)
  (list "DOWNSTREAM_URL" $c.downstreamUrl)
  (list "DOWNSTREAM_TIMEOUT" $c.downstreamTimeout)
  (list "MAX_HEADER_BYTES" $c.maxHeaderBytes)
  (list "MAX_BODY_BYTES" $c.maxBodyBytes)
  (list "HEADER_READ_TIMEOUT" $c.headerReadTimeout)
  (list "MAX_CONNECTIONS" $c.maxConnections)
  (list "RESERVED_CONNECTIONS" $c.reservedConnections)
  (list "SYNTHETIC_METRICS" $y.metrics)
  (list "SYNTHETIC_SERIES" $y.series)
  (list "SYNTHETIC_LABELS" $y.labels)
  (list "SYNTHETIC_TYPE" $y.type)
  (list "SYNTHETIC_VALUE_INTERVAL" $y.valueInterval)
  (list "SYNTHETIC_CHURN" $y.churn)
  (list "SYNTHETIC_CHURN_RATIO" $y.churnRatio)
  (list "CHAOS_ERROR_RATE" $k.errorRate)
  (list "CHAOS_ERROR_STATUS" $k.errorStatus)
  (list "CHAOS_LATENCY" $k.latency)
  (list "CHAOS_JITTER" $k.jitter)
  (list "CHAOS_LATENCY_RATE" $k.latencyRate)
  (list "CHAOS_SEED" $k.seed)
  (list "CHAOS_READY" $k.ready)
  (list "CHAOS_HEALTHY" $k.healthy)
  (list "CHAOS_ALLOW_PANIC" (ternary "true" "" (eq (toString $k.allowPanic) "true")))
  (list "CHAOS_CPU_STRESS" $k.cpuStress)
  (list "CHAOS_MEMORY_STRESS" $k.memoryStress)
}}
{{- if not $c.logToStdout }}
{{- $pairs = append $pairs (list "LOG_DIR" (include "prom-metrics-app.logDir" $c)) }}
{{- end }}
{{- range $pairs }}
{{- $value := index . 1 }}
{{- if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
{{- /* Helm reads numbers as floats, and a large float prints as 1e+06. */}}
{{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $value = int64 $value }}
{{- end }}
- name: {{ index . 0 }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuses what the schema cannot express: a chaos latency or jitter above 60 s, or both together
above 60 s, and a seed above 2^64-1. The app would exit with code 2 on either.
*/}}
{{- define "prom-metrics-app.checkChaos" -}}
{{- $latency := include "prom-metrics-app.seconds" .chaos.latency | float64 }}
{{- $jitter := include "prom-metrics-app.seconds" .chaos.jitter | float64 }}
{{- if gt (addf $latency $jitter) 60.0 }}
{{- fail (printf "%s: latency (%v) plus jitter (%v) must be at most 60s" .where .chaos.latency .chaos.jitter) }}
{{- end }}
{{- $seed := toString .chaos.seed }}
{{- if and (eq (len $seed) 20) (gt $seed "18446744073709551615") }}
{{- fail (printf "%s: seed %s is above 18446744073709551615, the largest 64-bit seed" .where $seed) }}
{{- end }}
{{- end }}

{{/* Seconds of a duration in the app's syntax (`200ms`, `1.5s`, `2m`, `3`); 0 when empty. */}}
{{- define "prom-metrics-app.seconds" -}}
{{- $value := . | toString | trim | lower }}
{{- if or (kindIs "invalid" .) (eq $value "") }}0
{{- else if hasSuffix "ms" $value }}{{ divf (trimSuffix "ms" $value | float64) 1000 }}
{{- else if hasSuffix "s" $value }}{{ trimSuffix "s" $value | float64 }}
{{- else if hasSuffix "m" $value }}{{ mulf (trimSuffix "m" $value | float64) 60 }}
{{- else }}{{ $value | float64 }}
{{- end }}
{{- end }}

{{/* Folder of the log file, an emptyDir, when an instance does not log to stdout; from its config. */}}
{{- define "prom-metrics-app.logDir" -}}
{{- .logDir | default "/var/log/prom-metrics-app" }}
{{- end }}
