#!/usr/bin/env bash
# Installs the PolicyReport (wgpolicyk8s.io/v1alpha2) schema into .cache/tools/policyreport/
# (git-ignored), from the npm registry: @kubernetes-models/kyverno ships the validators generated
# from Kyverno's policyreport API (the types its PolicyReport and ClusterPolicyReport CRDs are
# generated from) and the TypeScript interfaces that list each object's fields. No npm package
# ships the CRD YAML itself. The audit test (tests/integration/audit_outputs_test.py) validates
# `imagegate audit --output policyreport` with them (tests/integration/validate_policy_report.mjs).
# Idempotent: a stamp file records the pinned package; when it matches, nothing runs.
# Exit 75 (EX_TEMPFAIL) when the npm registry cannot be reached, so a test can tell that apart.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.cache/tools/policyreport
package=@kubernetes-models/kyverno@2.0.0

if [[ -f $tools/stamp && "$(cat "$tools/stamp")" == "$package" ]]; then
  exit 0
fi

echo "install-policyreport-schema: installing $package into $tools" >&2
rm -rf "$tools" && mkdir -p "$tools"
# --ignore-scripts: nothing of the package runs at install time; engine warnings (it asks for
# node 22) are harmless: only its plain ES modules are loaded.
if ! npm install --prefix "$tools" --no-save --no-audit --no-fund --ignore-scripts \
    --loglevel=error "$package" >"$tools/npm.log" 2>&1; then
  if ! npm ping --loglevel=silent >/dev/null 2>&1; then
    echo "install-policyreport-schema: the npm registry cannot be reached ($(tail -n 1 "$tools/npm.log"))" >&2
    exit 75
  fi
  cat "$tools/npm.log" >&2
  exit 1
fi
echo "$package" >"$tools/stamp"
