{{/* Names ------------------------------------------------------------------------------------------- */}}

{{- define "kubemate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubemate.fullname" -}}
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

{{- define "kubemate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-app" (include "kubemate.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------------------ */}}

{{- define "kubemate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubemate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubemate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubemate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubemate
{{- end -}}

{{/* Image: a digest wins over the tag; the tag defaults to the chart's appVersion. */}}
{{- define "kubemate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Service's in-cluster name: always in ALLOWED_HOSTS, the Host header of the web probes. */}}
{{- define "kubemate.serviceHost" -}}
{{- printf "%s.%s.svc" (include "kubemate.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "kubemate.publicUrl" -}}
{{- if .Values.config.publicUrl -}}
{{- .Values.config.publicUrl | trimSuffix "/" -}}
{{- else if .Values.host -}}
{{- printf "https://%s" .Values.host -}}
{{- end -}}
{{- end -}}

{{/* Secrets ----------------------------------------------------------------------------------------------
The chart renders no Secret: it names the installer's. Rendering stops here when none is named. */}}
{{- define "kubemate.secretName" -}}
{{- required "existingSecret is required: create a Secret with the keys SECRET_KEY, KUBEMATE_ENCRYPTION_KEYS, DATABASE_URL and REDIS_URL in the release's namespace and pass its name (--set existingSecret=NAME); the chart never renders secrets (see its README.md)" .Values.existingSecret -}}
{{- end -}}

{{/* Environment ------------------------------------------------------------------------------------------
The non-secret settings, as a map: the ConfigMap's data, and the migration hook's env (the hook runs before the
release's ConfigMap exists, so it carries the same values inline). */}}
{{- define "kubemate.configData" -}}
{{- $hosts := list -}}
{{- if .Values.host -}}{{- $hosts = append $hosts .Values.host -}}{{- end -}}
{{- $hosts = concat $hosts .Values.config.allowedHosts -}}
{{- $svc := include "kubemate.fullname" . -}}
{{- $hosts = concat $hosts (list $svc (printf "%s.%s" $svc .Release.Namespace) (include "kubemate.serviceHost" .) (printf "%s.cluster.local" (include "kubemate.serviceHost" .))) -}}
{{- $data := dict
  "DJANGO_SETTINGS_MODULE" "kubemate.settings.production"
  "ALLOWED_HOSTS" (join "," (uniq $hosts))
  "LANGUAGE_CODE" .Values.config.languageCode
  "TIME_ZONE" .Values.config.timeZone
  "KUBEMATE_LOG_LEVEL" .Values.config.logLevel
  "KUBEMATE_BEHIND_TLS_PROXY" (toString .Values.config.behindTlsProxy)
  "KUBEMATE_SSL_REDIRECT" (toString .Values.config.sslRedirect)
  "KUBEMATE_HSTS_SECONDS" (toString (int .Values.config.hstsSeconds))
  "EMAIL_PORT" (toString (int .Values.config.email.port))
  "EMAIL_USE_TLS" (toString .Values.config.email.useTls)
  "DEFAULT_FROM_EMAIL" .Values.config.email.from
  "KUBEMATE_CICD_STORAGE" "/var/lib/kubemate/shared/cicd"
  "KUBEMATE_AI_DOCUMENTS_DIR" "/var/lib/kubemate/shared/ai-documents"
  "KUBEMATE_BACKUP_WORKDIR" "/var/lib/kubemate/backups-work"
  "XDG_CACHE_HOME" "/tmp/.cache"
  "PYTHONDONTWRITEBYTECODE" "1"
-}}
{{- with (include "kubemate.publicUrl" .) -}}
{{- $_ := set $data "KUBEMATE_PUBLIC_URL" . -}}
{{- $_ := set $data "CSRF_TRUSTED_ORIGINS" . -}}
{{- end -}}
{{- with .Values.config.email.host -}}{{- $_ := set $data "EMAIL_HOST" . -}}{{- end -}}
{{- with .Values.config.email.user -}}{{- $_ := set $data "EMAIL_HOST_USER" . -}}{{- end -}}
{{- range $key, $value := .Values.config.env -}}
{{- $_ := set $data $key (toString $value) -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* The secret settings, each a secretKeyRef to the installer's Secret(s); the optional ones may be absent. */}}
{{- define "kubemate.secretEnv" -}}
{{- $secret := include "kubemate.secretName" . -}}
- name: SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ $secret | quote }}, key: SECRET_KEY}}
- name: KUBEMATE_ENCRYPTION_KEYS
  valueFrom: {secretKeyRef: {name: {{ $secret | quote }}, key: KUBEMATE_ENCRYPTION_KEYS}}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ default $secret .Values.externalDatabase.existingSecret | quote }}, key: {{ .Values.externalDatabase.existingSecretKey | quote }}}}
- name: REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ default $secret .Values.externalRedis.existingSecret | quote }}, key: {{ .Values.externalRedis.existingSecretKey | quote }}}}
{{- range list "EMAIL_HOST_PASSWORD" "KUBEMATE_LDAP_BIND_PASSWORD" "KUBEMATE_OIDC_CLIENT_SECRET" "KUBEMATE_MILVUS_TOKEN" }}
- name: {{ . }}
  valueFrom: {secretKeyRef: {name: {{ $secret | quote }}, key: {{ . }}, optional: true}}
{{- end }}
{{- end -}}

{{/* Pod pieces shared by web, worker and the migration hook ------------------------------------------- */}}

{{- define "kubemate.volumes" -}}
- name: tmp
  emptyDir: {sizeLimit: {{ .Values.storage.tmpSizeLimit }}}
- name: backups-work
  emptyDir: {sizeLimit: {{ .Values.storage.backupWorkSizeLimit }}}
- name: shared
{{- if .Values.storage.sharedClaim }}
  persistentVolumeClaim: {claimName: {{ .Values.storage.sharedClaim | quote }}}
{{- else }}
  emptyDir: {sizeLimit: {{ .Values.storage.sharedSizeLimit }}}
{{- end }}
{{- end -}}

{{- define "kubemate.volumeMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: backups-work, mountPath: /var/lib/kubemate/backups-work}
- {name: shared, mountPath: /var/lib/kubemate/shared}
{{- end -}}

{{/* Spread one component's replicas over nodes, then zones. */}}
{{- define "kubemate.topologySpread" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- if $root.Values.topologySpread.enabled -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ $root.Values.topologySpread.nodeWhenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "kubemate.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
    matchLabelKeys: [pod-template-hash]
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ $root.Values.topologySpread.zoneWhenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "kubemate.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $component }}
    matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end -}}

{{/* The worker's liveness: this pod's heartbeat key in Redis (apps/core/heartbeat.py writes
kubemate:worker:<hostname>:<pid>:<id> every 10 s, expiring after 30 s). Only the redis client is imported (no
Django): about a tenth of a second. Redis unreachable passes: restarting workers does not bring Redis back. */}}
{{- define "kubemate.workerProbeCommand" -}}
- python
- -c
- |
  import os, socket, sys
  import redis
  try:
      client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=3, socket_connect_timeout=3)
      key = next(client.scan_iter(match="kubemate:worker:%s:*" % socket.gethostname(), count=1000), None)
  except redis.RedisError as exc:
      print("Redis unreachable, not this worker's fault: %s" % exc)
      sys.exit(0)
  if key is None:
      print("no heartbeat from this worker in the last 30 s")
      sys.exit(1)
{{- end -}}
