{{/* The release's full name: "overspill" for a release named overspill (as kustomize names everything). */}}
{{- define "overspill.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "overspill.serviceAccountName" -}}
{{- default (include "overspill.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "overspill.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "overspill.labels" -}}
{{ include "overspill.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The rules of the kustomize base's ClusterRole or Role (files/rbac.yaml -> manifests/base/rbac.yaml). */}}
{{- define "overspill.kustomizeRules" -}}
{{- $root := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $found := list -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get "files/rbac.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if eq (get $obj "kind") $kind -}}
{{- $found = append $found $obj -}}
{{- end -}}
{{- end -}}
{{- if ne (len $found) 1 -}}
{{- fail (printf "files/rbac.yaml (manifests/base/rbac.yaml) must hold exactly one %s" $kind) -}}
{{- end -}}
{{- toYaml (index $found 0).rules -}}
{{- end -}}
