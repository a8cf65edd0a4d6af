{{/* Names: "<base>-controller" etc., base "raywarden" unless fullnameOverride, as manifests/. */}}
{{- define "raywarden.base" -}}
{{- .Values.fullnameOverride | default "raywarden" | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "raywarden.controller" -}}
{{- include "raywarden.base" . -}}-controller
{{- end -}}

{{- define "raywarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "raywarden.controller" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "raywarden.masterKeySecret" -}}
{{- .Values.agent.masterKey.existingSecret | default (printf "%s-agent-master-key" (include "raywarden.base" .)) -}}
{{- end -}}

{{/* The Deployment's selector: the same as manifests/ (immutable once created). */}}
{{- define "raywarden.selectorLabels" -}}
app.kubernetes.io/name: raywarden
app.kubernetes.io/component: controller
{{- end -}}

{{- define "raywarden.labels" -}}
{{ include "raywarden.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "raywarden.metadata" -}}
labels:
  {{- include "raywarden.labels" . | nindent 2 }}
{{- with .Values.annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The rules of the first document of a generated RBAC file (files/rbac/*.yaml, copies of what
`raywarden-controller --print-rbac[=WHICH]` prints), comments included, so the chart grants
exactly what the controller's grant table says. Call with (dict "root" $ "file" PATH).
*/}}
{{- define "raywarden.rules" -}}
{{- $text := .root.Files.Get .file -}}
{{- $doc := index (regexSplit "\n---\n" $text -1) 0 -}}
{{- if not (contains "\nrules:\n" $doc) -}}
{{- fail (printf "%s: no rules (run manifests/hack/sync_chart.py)" .file) -}}
{{- end -}}
{{- regexReplaceAll "(?s)^.*?\nrules:\n" $doc "" | trimSuffix "\n" -}}
{{- end -}}

{{/* volcano or scheduler-plugins: the ones that need the PodGroup RBAC. */}}
{{- define "raywarden.batchScheduler" -}}
{{- if .Values.batchScheduler.name -}}
{{- .Values.batchScheduler.name -}}
{{- else if .Values.batchScheduler.enabled -}}
volcano
{{- end -}}
{{- end -}}

{{- define "raywarden.watchNamespaces" -}}
{{- if .Values.singleNamespaceInstall -}}
{{- .Release.Namespace -}}
{{- else -}}
{{- join "," .Values.watchNamespace -}}
{{- end -}}
{{- end -}}
