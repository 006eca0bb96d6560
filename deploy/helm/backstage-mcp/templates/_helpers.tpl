{{/* Chart name, truncated to the 63 characters Kubernetes allows. */}}
{{- define "backstage-mcp.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-chart, or the release name when it already holds the chart name. */}}
{{- define "backstage-mcp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "backstage-mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backstage-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "backstage-mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "backstage-mcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "backstage-mcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "backstage-mcp.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "backstage-mcp.tokenSecret" -}}
{{- .Values.backstage.existingSecret | default (printf "%s-backstage" (include "backstage-mcp.fullname" .)) -}}
{{- end -}}

{{- define "backstage-mcp.adminSecret" -}}
{{- .Values.metrics.existingSecret | default (printf "%s-admin" (include "backstage-mcp.fullname" .)) -}}
{{- end -}}

{{/* Refuse configurations that would deploy a broken or unsafe server. */}}
{{- define "backstage-mcp.validate" -}}
{{- if not .Values.backstage.url -}}
{{- fail "backstage.url is required: the Backstage backend's base URL, e.g. http://backstage.backstage.svc:7007" -}}
{{- end -}}
{{- if not .Values.publicURL -}}
{{- fail "publicURL is required: the URL agents use to reach this server, e.g. https://mcp.example.com" -}}
{{- end -}}
{{- if and (not .Values.backstage.existingSecret) (not .Values.backstage.token) -}}
{{- fail "a Backstage credential is required: set backstage.existingSecret (preferred) or backstage.token" -}}
{{- end -}}
{{- if not .Values.policy -}}
{{- fail "policy is required: without a policy nothing is allowed (see testdata/policy.example.yaml)" -}}
{{- end -}}
{{- if not (and .Values.config.auth .Values.config.auth.issuers) -}}
{{- fail "config.auth.issuers is required: the OpenID providers whose tokens the server accepts" -}}
{{- end -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}
{{- if not .Values.redis.enabled -}}
{{- fail "more than one replica needs redis.enabled: per-process rate limits would multiply with the replica count" -}}
{{- end -}}
{{- if not .Values.cursorKey.existingSecret -}}
{{- fail "more than one replica needs cursorKey.existingSecret: every replica must sign pagination cursors with the same key" -}}
{{- end -}}
{{- end -}}
{{- $redisCfg := (get (.Values.config | default dict) "redis") | default dict -}}
{{- if and .Values.redis.enabled (not .Values.redis.existingSecret) (not (get $redisCfg "sentinel")) (not (get $redisCfg "cluster")) -}}
{{- fail "redis.enabled needs redis.existingSecret (the Secret holding the Redis URL), or config.redis.sentinel or config.redis.cluster saying where Redis is" -}}
{{- end -}}
{{- if and .Values.redis.enabled (not .Values.cursorKey.existingSecret) -}}
{{- fail "redis.enabled needs cursorKey.existingSecret: with state: redis every replica must seal pagination cursors with the same key, kept outside Redis" -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "serviceMonitor.enabled needs metrics.enabled (the admin port it scrapes)" -}}
{{- end -}}
{{- end -}}
