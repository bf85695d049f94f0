#!/usr/bin/env python3
"""Writes the Kubernetes API's field names and types as one JSON file, for the chart test's
unknown-field check.

kubernetes-models validates types, enums and required fields, but its schemas allow additional
properties, so a misspelt field (`readOnlyRootFilesytem`) would pass it and be silently dropped
by the API server. The official JavaScript client (@kubernetes/client-node) generates one model
per API type from the same OpenAPI spec, each with an `attributeTypeMap` listing every field
(`baseName`, the JSON name) and its type. This script reads those maps out of the model files
(they are JSON literals) and writes {"V1PodSpec": {"containers": "Array<V1Container>", ...}}.

usage: extract_k8s_fields.py MODELS_DIR OUTPUT_JSON
"""
import json
import pathlib
import re
import sys

ASSIGNMENT = re.compile(r"^(\w+)\.attributeTypeMap = (\[.*?^\]);", re.S | re.M)


def main() -> int:
    models_dir, output = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    types = {}
    for path in sorted(models_dir.glob("*.js")):
        for name, literal in ASSIGNMENT.findall(path.read_text()):
            types[name] = {field["baseName"]: field["type"] for field in json.loads(literal)}
    if "V1PodSpec" not in types or "V1ValidatingWebhook" not in types:
        print(f"extract_k8s_fields: no models found in {models_dir}", file=sys.stderr)
        return 1
    output.write_text(json.dumps(types, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
