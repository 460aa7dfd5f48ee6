{{/* Names and labels. */}}
{{- define "entsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "entsync.fullname" -}}
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

{{/* A component's resource name: <fullname>-<component>, within 63 characters. */}}
{{- define "entsync.component" -}}
{{- printf "%s-%s" (include "entsync.fullname" .root | trunc 40 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "entsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "entsync.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "entsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entsync.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "entsync.labels" -}}
{{ include "entsync.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: entsync
{{- end -}}

{{- define "entsync.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Consistency checks the values schema cannot express (it sees one value at a time). */}}
{{- define "entsync.checks" -}}
{{- if gt (int .Values.worker.replicas) (int .Values.kafka.topicPartitions) -}}
{{- fail (printf "worker.replicas (%d) must not exceed kafka.topicPartitions (%d): a worker beyond the partitions gets no work" (int .Values.worker.replicas) (int .Values.kafka.topicPartitions)) -}}
{{- end -}}
{{- if and .Values.bridge.enabled (eq .Values.bridge.store.type "sqlite") (gt (int .Values.bridge.replicas) 1) -}}
{{- fail "bridge.replicas must be 1 with bridge.store.type=sqlite (one file on one volume): use postgresql for more" -}}
{{- end -}}
{{- end -}}

{{/* A secretKeyRef environment variable from a {name, key} value. */}}
{{- define "entsync.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name | quote }}
      key: {{ .ref.key | quote }}
{{- end -}}

{{/*
The environment of a component: the shared ConfigMap, then the secrets this component needs.
.secrets lists which: ldap, kafka, digest, bridge, providers, bridgeStore, auditStore.
*/}}
{{- define "entsync.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "entsync.component" (dict "root" .root "component" "config") }}
{{- $items := include "entsync.secretEnvs" . | trim }}
{{- if $items }}
env:
{{ $items | indent 2 }}
{{- end }}
{{- end -}}

{{- define "entsync.secretEnvs" -}}
{{- $v := .root.Values -}}
{{- $want := .secrets -}}
{{- if and (has "kafka" $want) (hasPrefix "SASL_" $v.kafka.securityProtocol) }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_KAFKA_SASL_PASSWORD" "ref" $v.kafka.sasl.passwordSecret) }}
{{- end }}
{{- if has "ldap" $want }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_LDAP_PASSWORD" "ref" $v.ldap.passwordSecret) }}
{{- end }}
{{- if has "digest" $want }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_AUDIT_DIGEST_KEY" "ref" $v.audit.digestKeySecret) }}
{{- end }}
{{- if has "bridge" $want }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_BRIDGE_SECRET" "ref" $v.bridge.sessionSecret) }}
{{- if eq $v.bridge.store.type "postgresql" }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_BRIDGE_STORE_URL" "ref" $v.bridge.store.urlSecret) }}
{{- end }}
{{- end }}
{{- if has "providers" $want }}
{{- if $v.bridge.educonnect.issuer }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_BRIDGE_EDUCONNECT_CLIENT_SECRET" "ref" $v.bridge.educonnect.clientSecret) }}
{{- end }}
{{- if $v.bridge.franceconnect.issuer }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_BRIDGE_FRANCECONNECT_CLIENT_SECRET" "ref" $v.bridge.franceconnect.clientSecret) }}
{{- end }}
{{- end }}
{{- if and (has "auditStore" $want) (eq $v.auditConsumer.store.type "postgresql") }}
{{ include "entsync.secretEnv" (dict "env" "ENTSYNC_AUDIT_DB_URL" "ref" $v.auditConsumer.store.urlSecret) }}
{{- end }}
{{- range $v.extraSecretEnv }}
{{ include "entsync.secretEnv" (dict "env" .name "ref" (dict "name" .secretName "key" .key)) }}
{{- end }}
{{- end -}}

{{/* The container's security context: the same for every container of the chart. */}}
{{- define "entsync.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Volume mounts every container has: state dir, /tmp, and the TLS material configured. */}}
{{- define "entsync.volumeMounts" -}}
- name: state
  mountPath: /var/lib/entsync
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: /etc/entsync/kafka-tls
  readOnly: true
{{- end }}
{{- if or .Values.ldap.ca.secretName .Values.ldap.ca.configMapName }}
- name: ldap-tls
  mountPath: /etc/entsync/ldap-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The volumes behind entsync.volumeMounts, but "state", which each component sets. */}}
{{- define "entsync.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName | quote }}
    defaultMode: 0440
{{- end }}
{{- if .Values.ldap.ca.secretName }}
- name: ldap-tls
  secret:
    secretName: {{ .Values.ldap.ca.secretName | quote }}
    defaultMode: 0440
{{- else if .Values.ldap.ca.configMapName }}
- name: ldap-tls
  configMap:
    name: {{ .Values.ldap.ca.configMapName | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every pod template. */}}
{{- define "entsync.podSpecCommon" -}}
serviceAccountName: {{ include "entsync.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: labels, and a checksum of the ConfigMap so that a change rolls the pods. */}}
{{- define "entsync.podMetadata" -}}
metadata:
  labels:
    {{- include "entsync.selectorLabels" . | nindent 4 }}
    {{- with .root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
    {{- with .root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* HTTP probes on a named port. */}}
{{- define "entsync.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
{{- end -}}
