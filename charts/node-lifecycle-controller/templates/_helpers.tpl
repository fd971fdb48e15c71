{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "nlc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name: the release name, unless it already contains the chart name. */}}
{{- define "nlc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nlc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nlc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nlc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "nlc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: node-lifecycle-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "nlc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nlc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "nlc.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The port of --admin-address ("0.0.0.0:8080", "[::]:8080"): the text after the last colon. */}}
{{- define "nlc.adminPort" -}}
{{- splitList ":" .Values.adminAddress | last | int -}}
{{- end -}}

{{/* The port of --secure-address, likewise. */}}
{{- define "nlc.securePort" -}}
{{- splitList ":" .Values.secureAddress | last | int -}}
{{- end -}}

{{/* Where tls.secretName is mounted. */}}
{{- define "nlc.tlsDir" -}}/etc/node-lifecycle-controller/tls{{- end -}}

{{/* --tls-cert-file: the value, else the mounted Secret's tls.crt. */}}
{{- define "nlc.tlsCertFile" -}}
{{- if .Values.tlsCertFile -}}
{{- .Values.tlsCertFile -}}
{{- else if .Values.tls.secretName -}}
{{- include "nlc.tlsDir" . }}/tls.crt
{{- end -}}
{{- end -}}

{{/* --tls-private-key-file: the value, else the mounted Secret's tls.key. */}}
{{- define "nlc.tlsPrivateKeyFile" -}}
{{- if .Values.tlsPrivateKeyFile -}}
{{- .Values.tlsPrivateKeyFile -}}
{{- else if .Values.tls.secretName -}}
{{- include "nlc.tlsDir" . }}/tls.key
{{- end -}}
{{- end -}}

{{- define "nlc.metricsServiceName" -}}
{{- printf "%s-metrics" (include "nlc.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* PromQL label matchers that select this release's series. */}}
{{- define "nlc.metricSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{- .Values.prometheusRule.selector -}}
{{- else -}}
{{- printf "namespace=%q,service=%q" .Release.Namespace (include "nlc.metricsServiceName" .) -}}
{{- end -}}
{{- end -}}

{{/* Settings that cannot be expressed in values.schema.json. */}}
{{- define "nlc.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElect) -}}
{{- fail "replicaCount > 1 needs leaderElect: true (two replicas without leader election would both act)" -}}
{{- end -}}
{{- if and (not .Values.secureAddress) (not .Values.adminAddress) -}}
{{- fail "secureAddress and adminAddress are both empty: the probes need one of them" -}}
{{- end -}}
{{- if and .Values.secureAddress .Values.adminAddress (eq (include "nlc.securePort" .) (include "nlc.adminPort" .)) -}}
{{- fail "secureAddress and adminAddress use the same port" -}}
{{- end -}}
{{- if ne (empty .Values.tlsCertFile) (empty .Values.tlsPrivateKeyFile) -}}
{{- fail "tlsCertFile and tlsPrivateKeyFile go together: set both or neither" -}}
{{- end -}}
{{- if and (or .Values.tlsCertFile .Values.tls.secretName) (not .Values.secureAddress) -}}
{{- fail "tlsCertFile and tls.secretName need secureAddress" -}}
{{- end -}}
{{- end -}}

{{/* The probes' port and scheme: the secure port when it is on, else the plain one. */}}
{{- define "nlc.probePort" -}}
{{- if .Values.secureAddress -}}
port: https-metrics
scheme: HTTPS
{{- else -}}
port: http-metrics
scheme: HTTP
{{- end -}}
{{- end -}}
