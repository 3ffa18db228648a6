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

{{/* Labels shared by every object of the app, pods included. */}}
{{- define "prom-metrics-app.commonLabels" -}}
{{- /* A tag may hold characters a label value cannot (a digest's ':'). */ -}}
app.kubernetes.io/version: {{ regexReplaceAll "[^-A-Za-z0-9_.]" (.Values.image.tag | default .Chart.AppVersion) "_" | trunc 63 | trimAll "-_." | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: prom-metrics-app
app.kubernetes.io/managed-by: {{ .Release.Service }}
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
The app's settings as [variable, value] pairs, in the README's order. An empty value leaves the
variable out, so the app's own default applies.
*/}}
{{- define "prom-metrics-app.settings" -}}
{{- $c := .Values.config }}
{{- $o := .Values.config.otel }}
{{- $pairs := list
  (list "METRICS_BACKEND" $c.metricsBackend)
  (list "OTEL_EXPORTER" $o.exporter)
  (list "CONSOLE_FORMAT" $o.consoleFormat)
  (list "OTEL_EXPORTER_OTLP_ENDPOINT" $o.exporterOtlpEndpoint)
  (list "OTEL_EXPORTER_OTLP_INSECURE" $o.exporterOtlpInsecure)
  (list "OTEL_EXPORTER_OTLP_PROTOCOL" $o.exporterOtlpProtocol)
  (list "OTEL_EXPORTER_OTLP_TIMEOUT" $o.exporterOtlpTimeout)
  (list "OTEL_TRACES_SAMPLER" $o.tracesSampler)
  (list "OTEL_TRACES_SAMPLER_ARG" $o.tracesSamplerArg)
  (list "OTEL_METRIC_EXPORT_INTERVAL" $o.metricExportInterval)
  (list "OTEL_PROPAGATORS" $o.propagators)
  (list "OTEL_SERVICE_NAME" $o.serviceName)
  (list "OTEL_RESOURCE_ATTRIBUTES" $o.resourceAttributes)
  (list "LOG_TO_STDOUT" $c.logToStdout)
  (list "RUST_LOG" $c.logLevel)
  (list "TRACES_EXCLUDED_PATHS" $c.tracesExcludedPaths)
  (list "DOWNSTREAM_URL" $c.downstreamUrl)
  (list "DOWNSTREAM_TIMEOUT" $c.downstreamTimeout)
}}
{{- if not $c.logToStdout }}
{{- $pairs = append $pairs (list "LOG_DIR" (include "prom-metrics-app.logDir" .)) }}
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

{{/* Folder of the log file, an emptyDir, when the app does not log to stdout. */}}
{{- define "prom-metrics-app.logDir" -}}
{{- .Values.config.logDir | default "/var/log/prom-metrics-app" }}
{{- end }}
