{{- define "image-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "image-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "image-operator.labels" -}}
app.kubernetes.io/name: {{ include "image-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "image-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "image-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "image-operator.serviceAccountName" -}}
{{- default (include "image-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The rules the operator needs on its own kinds, events and Secrets, in any namespace. */}}
{{- define "image-operator.namespacedRules" -}}
- apiGroups: ["imageops.io"]
  resources: [imageproviders, images, baseimages, imagepipelines, communitylistings]
  verbs: [get, list, watch, patch]
# An ImagePipeline with spec.outputImages makes an Image per run and deletes retired ones.
- apiGroups: ["imageops.io"]
  resources: [images]
  verbs: [create, delete]
- apiGroups: ["imageops.io"]
  resources: [imageproviders/status, images/status, baseimages/status, imagepipelines/status, communitylistings/status]
  verbs: [get, patch]
- apiGroups: ["imageops.io"]
  resources: [imageproviders/finalizers, images/finalizers, baseimages/finalizers, imagepipelines/finalizers, communitylistings/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# A CommunityListing's cover may come from a ConfigMap key.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
  {{- with .Values.rbac.secretNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end -}}
