{{/* Names and labels shared by every template. */}}

{{- define "imagegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RELEASE-imagegate, or RELEASE when it already says imagegate; 63 characters at most because
     it names a Service (a DNS label). */}}
{{- define "imagegate.fullname" -}}
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

{{- define "imagegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imagegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "imagegate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "imagegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "imagegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "imagegate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding tls.crt, tls.key and ca.crt, whichever way they are made. */}}
{{- define "imagegate.tlsSecretName" -}}
{{- printf "%s-tls" (include "imagegate.fullname" .) -}}
{{- end -}}

{{- define "imagegate.policiesConfigMapName" -}}
{{- default (printf "%s-policies" (include "imagegate.fullname" .)) .Values.policies.existingConfigMap -}}
{{- end -}}

{{/* Whether the chart renders a dockerconfigjson Secret, or mounts one, for private registries. */}}
{{- define "imagegate.dockerConfigSecretName" -}}
{{- if .Values.registry.credentials.existingSecret -}}
{{- .Values.registry.credentials.existingSecret -}}
{{- else if .Values.registry.credentials.auths -}}
{{- printf "%s-registry-credentials" (include "imagegate.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The DNS name the API server calls: the Service's, in the release namespace. */}}
{{- define "imagegate.serviceHost" -}}
{{- printf "%s.%s.svc" (include "imagegate.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "imagegate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The CA and serving certificate the chart generates (tls.certManager.enabled false), as JSON
     {"ca", "crt", "key"}. Two templates need them (the Secret and the webhook's caBundle), and
     each call of genCA makes a new key, so the first call stores its result in the render's
     values and later calls reuse it. Across upgrades the existing Secret is looked up and kept:
     a new CA on every upgrade would break the running pods' trust until they restarted.
     `helm template` and --dry-run cannot look up (no cluster): they always show fresh ones. */}}
{{- define "imagegate.generatedTLS" -}}
{{- if not (hasKey .Values "__imagegateGeneratedTLS") -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "imagegate.tlsSecretName" .) -}}
{{- $material := dict -}}
{{- if and $secret $secret.data (hasKey $secret.data "ca.crt") (hasKey $secret.data "tls.crt") (hasKey $secret.data "tls.key") -}}
{{- $material = dict "ca" (index $secret.data "ca.crt" | b64dec) "crt" (index $secret.data "tls.crt" | b64dec) "key" (index $secret.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $host := include "imagegate.serviceHost" . -}}
{{- $service := include "imagegate.fullname" . -}}
{{- $days := int .Values.tls.generated.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $service) $days -}}
{{- $names := list $service (printf "%s.%s" $service .Release.Namespace) $host (printf "%s.cluster.local" $host) -}}
{{- $cert := genSignedCert $host nil $names $days $ca -}}
{{- $material = dict "ca" $ca.Cert "crt" $cert.Cert "key" $cert.Key -}}
{{- end -}}
{{- $_ := set .Values "__imagegateGeneratedTLS" $material -}}
{{- end -}}
{{- index .Values "__imagegateGeneratedTLS" | toJson -}}
{{- end -}}

{{/* The policy documents of policies.inline, as a dict file name -> YAML text, with
     `mode: audit` applied. */}}
{{- define "imagegate.inlinePolicies" -}}
{{- $files := dict -}}
{{- range $name, $spec := .Values.policies.inline -}}
{{- if $spec -}}
{{- $spec = deepCopy $spec -}}
{{- if eq $.Values.mode "audit" -}}
{{- $_ := set $spec "action" "Audit" -}}
{{- end -}}
{{- $doc := dict "apiVersion" "imagegate.dev/v1alpha1" "kind" "ImagePolicy" "metadata" (dict "name" $name) "spec" $spec -}}
{{- $_ := set $files (printf "%s.yaml" $name) (printf "# policies.inline.%s of the imagegate chart (mode: %s)\n%s" $name $.Values.mode (toYaml $doc)) -}}
{{- end -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}
