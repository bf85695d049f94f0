"""Parses a Prometheus text exposition with the real client library's parser.

Reads the exposition from the file named on the command line and prints JSON:
{"families": {name: type}, "samples": [{"name", "labels", "value"}]}. Exits 1 with the parser's
message when the text does not parse, so a test can show why.
"""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as source:
        text = source.read()
    families = {}
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                value = sample.value
                samples.append({
                    "name": sample.name,
                    "labels": dict(sample.labels),
                    # JSON has no infinities: the tests compare finite values only.
                    "value": value if math.isfinite(value) else str(value),
                })
    except Exception as error:  # the parser raises ValueError and others
        print(f"exposition does not parse: {error}", file=sys.stderr)
        return 1
    json.dump({"families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
