{{/* Names, labels and the lists several templates share. */}}

{{- define "tflite-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tflite-operator.fullname" -}}
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

{{- define "tflite-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* On every object the chart makes; objects for converter pods add component=converter. */}}
{{- define "tflite-operator.commonLabels" -}}
helm.sh/chart: {{ include "tflite-operator.chart" . }}
app.kubernetes.io/name: {{ include "tflite-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The operator's own objects. */}}
{{- define "tflite-operator.labels" -}}
{{ include "tflite-operator.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The operator pod's identity. component=operator keeps the selector off the converter pods,
which carry app.kubernetes.io/name=tflite-converter and managed-by=tflite-operator.
*/}}
{{- define "tflite-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tflite-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tflite-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tflite-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tflite-operator.converterServiceAccountName" -}}
{{- if .Values.converter.serviceAccount.create }}
{{- default (printf "%s-converter" (include "tflite-operator.fullname" .) | trunc 63 | trimSuffix "-") .Values.converter.serviceAccount.name }}
{{- else }}
{{- .Values.converter.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "tflite-operator.image" -}}
{{- $img := index . 0 }}{{- $root := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag | toString) }}
{{- end }}
{{- end }}

{{/*
Where converter pods run, as a JSON list (fromJsonArray in callers): the watched namespaces,
or, for a cluster-wide operator, converter.namespaces or else the release namespace.
*/}}
{{- define "tflite-operator.converterNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- .Values.operator.watchNamespaces | uniq | toJson }}
{{- else if .Values.converter.namespaces }}
{{- .Values.converter.namespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/* The converter pods' labels as the operator's Job builder sets them (job_builder.py). */}}
{{- define "tflite-operator.converterSelector" -}}
app.kubernetes.io/managed-by: tflite-operator
app.kubernetes.io/name: tflite-converter
{{- end }}
