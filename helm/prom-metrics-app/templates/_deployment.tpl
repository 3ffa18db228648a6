{{/*
A Deployment of the app, shared by the app itself (deployment.yaml) and the downstream
(downstream.yaml), so both get the same image, security contexts, probes, resources and volumes.
Takes a dict: root (the chart's context), name, labels, selectorLabels and podLabels (rendered
label lines), replicas ("" when an HPA owns them), config (the `config` values in force) and
where (their place in values.yaml, for error messages).
*/}}
{{- define "prom-metrics-app.deployment" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $config := .config }}
{{- $logDir := include "prom-metrics-app.logDir" $config -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- .labels | nindent 4 }}
spec:
  {{- if ne (toString .replicas) "" }}
  replicas: {{ .replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- .selectorLabels | nindent 6 }}
  template:
    metadata:
      annotations:
        {{- /* A new header value must restart the pods: env from a Secret is read at start only. */}}
        checksum/otlp-headers: {{ $values.otlpHeaders.value | sha256sum }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- .podLabels | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      serviceAccountName: {{ include "prom-metrics-app.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $values.serviceAccount.automount }}
      {{- /* Service links would add *_PORT/*_HOST variables the app never reads. */}}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ add (int $values.shutdownDrainDelaySeconds) (int $values.shutdownGracePeriodSeconds) 10 }}
      {{- with $values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $root.Chart.Name }}
          image: {{ include "prom-metrics-app.image" $root | quote }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          {{- with $values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $values.containerPort }}
              protocol: TCP
          env:
            - name: LISTEN_ADDR
              value: {{ printf "0.0.0.0:%d" (int $values.containerPort) | quote }}
            - name: SHUTDOWN_DRAIN_DELAY
              value: {{ printf "%ds" (int $values.shutdownDrainDelaySeconds) | quote }}
            - name: SHUTDOWN_GRACE_PERIOD
              value: {{ printf "%ds" (int $values.shutdownGracePeriodSeconds) | quote }}
            {{- include "prom-metrics-app.settings" (dict "root" $root "config" $config "where" .where) | trim | nindent 12 }}
            {{- with include "prom-metrics-app.otlpHeadersSecret" $root }}
            - name: OTEL_EXPORTER_OTLP_HEADERS
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: {{ $values.otlpHeaders.key }}
            {{- end }}
            {{- if $values.metricsAuth.existingSecret }}
            {{- /* A file, not an env value: the token never shows in the pod spec or in `env`. */}}
            - name: METRICS_AUTH_TOKEN_FILE
              value: {{ printf "/var/run/secrets/prom-metrics-app/metrics-auth/%s" $values.metricsAuth.key | quote }}
            - name: METRICS_AUTH_SCOPE
              value: {{ $values.metricsAuth.scope | quote }}
            {{- end }}
            {{- with $values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $values.livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $values.readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- if or (not $config.logToStdout) $values.extraVolumeMounts $values.metricsAuth.existingSecret }}
          volumeMounts:
            {{- if not $config.logToStdout }}
            - name: logs
              mountPath: {{ $logDir }}
            {{- end }}
            {{- if $values.metricsAuth.existingSecret }}
            - name: metrics-auth
              mountPath: /var/run/secrets/prom-metrics-app/metrics-auth
              readOnly: true
            {{- end }}
            {{- with $values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
      {{- if or (not $config.logToStdout) $values.extraVolumes $values.metricsAuth.existingSecret }}
      volumes:
        {{- with $values.metricsAuth.existingSecret }}
        - name: metrics-auth
          secret:
            secretName: {{ . }}
            items:
              - key: {{ $values.metricsAuth.key }}
                path: {{ $values.metricsAuth.key }}
        {{- end }}
        {{- if not $config.logToStdout }}
        {{- /* The root filesystem is read-only: the log file needs a writable folder.
        Rotation keeps at most 11 files of 10 MiB. */}}
        - name: logs
          emptyDir:
            sizeLimit: 128Mi
        {{- end }}
        {{- with $values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
