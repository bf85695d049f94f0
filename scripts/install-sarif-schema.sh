#!/usr/bin/env bash
# Installs the SARIF 2.1.0 JSON schema into .cache/tools/sarif/ (git-ignored), from the npm
# registry: Microsoft's @microsoft/jest-sarif ships it as lib/schemas/sarif-2.1.0-rtm.5.json (the
# schema of the 2.1.0 standard as SchemaStore publishes it, JSON Schema draft-04). The package is
# only packed, never installed or run; the one file is kept as sarif-schema-2.1.0.json. The SARIF
# test validates `imagegate check --output sarif` against it with python3-jsonschema.
# Idempotent: a stamp file records the pinned package; when it matches, nothing runs.
# Exit 75 (EX_TEMPFAIL) when the npm registry cannot be reached, so a test can tell that apart.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.cache/tools/sarif
package=@microsoft/jest-sarif@1.0.0-beta.0
member=package/lib/schemas/sarif-2.1.0-rtm.5.json
schema=$tools/sarif-schema-2.1.0.json

if [[ -f $schema && -f $tools/stamp && "$(cat "$tools/stamp")" == "$package" ]]; then
  exit 0
fi

echo "install-sarif-schema: packing $package into $tools" >&2
rm -rf "$tools/pack" && mkdir -p "$tools/pack"
if ! (cd "$tools/pack" && npm pack --silent --loglevel=error "$package" >/dev/null 2>npm.log); then
  if ! npm ping --loglevel=silent >/dev/null 2>&1; then
    echo "install-sarif-schema: the npm registry cannot be reached ($(tail -n 1 "$tools/pack/npm.log"))" >&2
    exit 75
  fi
  cat "$tools/pack/npm.log" >&2
  exit 1
fi
tar -xzf "$tools"/pack/*.tgz -C "$tools/pack" "$member"
mv "$tools/pack/$member" "$schema"
rm -rf "$tools/pack"
echo "$package" >"$tools/stamp"
