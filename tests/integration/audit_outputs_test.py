#!/usr/bin/python3
"""`imagegate audit`, the real binary, on the outputs and inputs tools and CI use:

  - `--output policyreport` on a kubectl List and on a directory of manifests, validated with
    the PolicyReport validators and field lists of the npm package @kubernetes-models/kyverno
    (scripts/install-policyreport-schema.sh; tests/integration/validate_policy_report.mjs, run
    with node), unknown fields rejected; names, labels, results and summaries checked;
  - `--output sarif` validated against the SARIF 2.1.0 JSON schema from an npm package
    (scripts/install-sarif-schema.sh) with python3-jsonschema; workloads as logical locations,
    their files as physical ones;
  - a directory of manifests (tests/data/audit/manifests: multi-document YAML, JSON, owners by
    name, a malformed document): the malformed document is named with its file and index on
    stderr and in the report while the rest is audited;
  - progress lines on stderr only, one per image fetched: at once on a terminal (a pty here),
    else once fetching outlasts --progress-after; none with --quiet.
When the npm registry cannot be reached the schema tests are skipped, saying so, and the driver
exits 77, which CTest reports as skipped.

usage: audit_outputs_test.py --source-dir DIR --imagegate BINARY [unittest arguments]
"""
import argparse
import json
import os
import pathlib
import pty
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None
NPM_UNREACHABLE = 75
SKIPPED = 77

# Needs each image's config when the spec sets no UID: the images must be fetched.
FACTS_POLICY = """apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: facts
spec:
  action: Enforce
  rules:
    - name: non-root
      runAsNonRoot: {}
"""


def audit(*args, policies=None, stdin=None):
    policy = policies or ARGS.source_dir / "tests/data/audit/policies.yaml"
    return subprocess.run([str(ARGS.imagegate), "audit", "--policy", str(policy), *map(str, args)],
                          capture_output=True, text=True, timeout=120, input=stdin)


def install(script):
    """Runs an installer of the npm-packaged schemas; skips the class when npm is unreachable."""
    run = subprocess.run([str(ARGS.source_dir / "scripts" / script)], capture_output=True,
                         text=True)
    if run.returncode == NPM_UNREACHABLE:
        ARGS.skipped_for_npm = True
        raise unittest.SkipTest(f"{script}: " + run.stderr.strip())
    if run.returncode != 0:
        raise AssertionError(f"{script} failed:\n" + run.stderr)


def cluster():
    return ARGS.source_dir / "tests/data/audit/cluster-list.json"


def manifests():
    return ARGS.source_dir / "tests/data/audit/manifests"


class PolicyReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        install("install-policyreport-schema.sh")
        cls.modules = ARGS.source_dir / ".cache/tools/policyreport/node_modules"
        cls.node = shutil.which("node")
        if cls.node is None:
            raise AssertionError("node is not installed (scripts/install-deps.sh installs it)")

    def validate(self, report):
        path = ARGS.scratch / "policyreport.json"
        path.write_text(json.dumps(report))
        return subprocess.run([self.node, str(ARGS.source_dir /
                                              "tests/integration/validate_policy_report.mjs"),
                               str(self.modules), str(path)],
                              capture_output=True, text=True, timeout=60)

    def policy_reports(self, *inputs, expected_exit):
        run = audit("--output", "policyreport", *inputs)
        self.assertEqual(run.returncode, expected_exit, run.stdout + run.stderr)
        report = json.loads(run.stdout)
        validation = self.validate(report)
        self.assertEqual(validation.returncode, 0,
                         validation.stdout + validation.stderr + json.dumps(report)[:3000])
        return report, run

    def assert_summaries_count_the_results(self, report):
        for item in report["items"]:
            counted = {result: 0 for result in ("pass", "fail", "warn", "error", "skip")}
            for result in item["results"]:
                counted[result["result"]] += 1
            self.assertEqual(item["summary"], counted, item["metadata"]["name"])

    def test_a_kubectl_list_gives_one_valid_report_per_namespace(self):
        report, _ = self.policy_reports(cluster(), expected_exit=1)
        self.assertEqual(report["kind"], "List")
        names = [(item["kind"], item["metadata"].get("namespace"), item["metadata"]["name"])
                 for item in report["items"]]
        self.assertEqual(names, [("PolicyReport", "batch", "imagegate-batch"),
                                 ("PolicyReport", "kube-system", "imagegate-kube-system"),
                                 ("PolicyReport", "shop", "imagegate-shop")])
        for item in report["items"]:
            self.assertEqual(item["metadata"]["labels"],
                             {"app.kubernetes.io/managed-by": "imagegate"})
        self.assert_summaries_count_the_results(report)
        shop = report["items"][2]
        privileged = [r for r in shop["results"] if r["rule"] == "no-privileged"
                      and r["resources"][0]["name"] == "web"]
        self.assertEqual(len(privileged), 1, json.dumps(shop["results"], indent=1)[:3000])
        (result,) = privileged
        self.assertEqual(result["result"], "fail")
        self.assertEqual(result["severity"], "high")
        self.assertEqual(result["source"], "imagegate")
        self.assertIn("Fix: ", result["message"])
        self.assertEqual(result["resources"][0]["kind"], "Deployment")
        self.assertTrue(result["resources"][0]["uid"])
        # The ReplicaSet and pod reported through the Deployment are resources of its results.
        self.assertEqual([r["kind"] for r in result["resources"]],
                         ["Deployment", "ReplicaSet", "Pod"])
        warned = [r for r in report["items"][1]["results"] if r["result"] == "warn"]
        self.assertEqual([(r["policy"], r["rule"], r["severity"]) for r in warned],
                         [("hardening", "read-only-root", "low")])
        self.assertTrue(all(r["result"] == "pass" for r in report["items"][0]["results"]))

    def test_manifests_with_an_unreadable_document_validate_too(self):
        report, run = self.policy_reports(manifests(), expected_exit=1)
        self.assert_summaries_count_the_results(report)
        kinds = [item["kind"] for item in report["items"]]
        self.assertEqual(kinds, ["PolicyReport"] * 3 + ["ClusterPolicyReport"])
        (error,) = report["items"][3]["results"]
        self.assertEqual(error["result"], "error")
        self.assertTrue(error["properties"]["source"].endswith("shop/pods.yml"), error)
        self.assertEqual(error["properties"]["document"], "2")
        self.assertIn("shop/pods.yml document 2", run.stderr)

    def test_the_validator_rejects_unknown_fields_and_bad_values(self):
        report, _ = self.policy_reports(cluster(), expected_exit=1)
        report["items"][0]["results"][0]["container"] = "app"
        report["items"][0]["results"][1]["result"] = "denied"
        validation = self.validate(report)
        self.assertEqual(validation.returncode, 1)
        self.assertIn("/items/0/results/0/container: unknown field", validation.stdout)
        self.assertIn("results/1/result must be equal to one of the allowed values",
                      validation.stdout)


class SarifTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        install("install-sarif-schema.sh")
        import jsonschema  # python3-jsonschema (scripts/install-deps.sh)
        schema = json.loads(
            (ARGS.source_dir / ".cache/tools/sarif/sarif-schema-2.1.0.json").read_text())
        cls.validator = jsonschema.validators.validator_for(schema)(schema)

    def sarif(self, *inputs, expected_exit):
        run = audit("--output", "sarif", *inputs)
        self.assertEqual(run.returncode, expected_exit, run.stdout + run.stderr)
        log = json.loads(run.stdout)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in self.validator.iter_errors(log)]
        self.assertEqual(errors, [], json.dumps(log, indent=1)[:4000])
        return log

    def test_audit_sarif_names_workloads_and_files(self):
        log = self.sarif(cluster(), manifests(), expected_exit=1)
        (run,) = log["runs"]
        rule_ids = sorted(rule["id"] for rule in run["tool"]["driver"]["rules"])
        self.assertEqual(rule_ids, ["baseline/no-host-namespaces", "baseline/no-latest-tag",
                                    "baseline/no-privileged", "hardening/read-only-root"])
        privileged = [r for r in run["results"] if r["ruleId"] == "baseline/no-privileged"]
        names = sorted(r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                       for r in privileged)
        self.assertEqual(names, ["shop/Deployment/web", "shop/Deployment/web"])
        uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                      for r in privileged)
        self.assertEqual(uris, sorted([str(cluster()), str(manifests() / "shop/web.yaml")]))
        self.assertEqual({r["level"] for r in privileged}, {"error"})
        self.assertEqual({r["properties"]["container"] for r in privileged}, {"app"})
        (invocation,) = run["invocations"]
        self.assertFalse(invocation["executionSuccessful"])  # the malformed document
        (note,) = invocation["toolExecutionNotifications"]
        self.assertIn("pods.yml document 2", note["message"]["text"])

    def test_clean_audit_is_successful(self):
        log = self.sarif(manifests() / "batch", expected_exit=0)
        (run,) = log["runs"]
        self.assertEqual(run["results"], [])
        self.assertTrue(run["invocations"][0]["executionSuccessful"])
        self.assertTrue(run["tool"]["driver"]["rules"])


class ManifestDirectoryTest(unittest.TestCase):
    def test_table_of_a_directory_with_a_malformed_document(self):
        run = audit(manifests())
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        out = run.stdout
        pods = manifests() / "shop/pods.yml"
        self.assertIn(f"imagegate audit: {pods} document 2: could not be evaluated: not YAML: "
                      "line 16, column 40: illegal flow end", run.stderr)
        self.assertIn(f"ERROR {pods} document 2: could not be evaluated: not YAML: line 16",
                      out)
        # Owners matched by name (manifests have no uids): one Deployment for three objects,
        # named in the order the files were read (pods.yml before web.yaml).
        self.assertIn("DENY  shop/Deployment/web  (reported here for its 2 owned objects: "
                      "Pod/web-7c9d-abcde, ReplicaSet/web-7c9d)\n"
                      "  deny  baseline/no-privileged  container \"app\"", out)
        self.assertIn("DENY  shop/Pod/debug\n  deny  baseline/no-host-namespaces  pod\n", out)
        # The YAML 1.1 `no` label and the quoted "1.10" tag are strings; `True` is a boolean.
        self.assertNotIn("read-only-root  container \"app\"", out)
        self.assertIn("WARN  kube-system/DaemonSet/node-agent\n"
                      "  warn  hardening/read-only-root  container \"agent\"", out)
        self.assertIn("Summary: 9 objects read, 5 workloads reported (3 more objects reported "
                      "through their owners, not twice): 1 clean, 2 with denials, 1 with "
                      "warnings only, 1 unreadable; skipped, not workloads: Service 1\n", out)

    def test_json_names_each_objects_file_and_document(self):
        run = audit("--output", "json", manifests() / "shop")
        report = json.loads(run.stdout)
        sources = [(pathlib.Path(w["source"]).name, w.get("document"), w["name"])
                   for w in report["workloads"]]
        self.assertEqual(sources, [("pods.yml", 2, ""), ("pods.yml", 3, "debug"),
                                   ("web.yaml", 1, "web")])

    def test_single_yaml_file_and_yaml_on_stdin(self):
        agent = manifests() / "kube-system/agent.yaml"
        by_file = audit("--output", "json", agent)
        by_stdin = audit("--output", "json", "-", stdin=agent.read_text())
        self.assertEqual(by_file.returncode, 0, by_file.stderr)
        self.assertEqual(by_stdin.returncode, 0, by_stdin.stderr)
        for run in (by_file, by_stdin):
            summary = json.loads(run.stdout)["summary"]
            self.assertEqual((summary["objects"], summary["withWarningsOnly"]), (1, 1))

    def test_byte_limit_applies_to_each_file_and_to_all(self):
        run = audit("--max-input-bytes", "2000", manifests())
        self.assertEqual(run.returncode, 2)
        self.assertIn("is larger than", run.stderr)
        self.assertEqual(run.stdout, "")


class ProgressTest(unittest.TestCase):
    """Images on a port nothing listens on: each fetch fails at once, which is all progress
    needs. --progress-after 0s shows progress as a slow run (or a terminal) would."""

    def setUp(self):
        self.policies = ARGS.scratch / "facts.yaml"
        self.policies.write_text(FACTS_POLICY)
        pods = []
        for name in ("one", "two"):
            pods.append({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": "ci"},
                         "spec": {"containers": [{"name": "app",
                                                  "image": f"127.0.0.1:9/ci/{name}:1"}]}})
        self.input = ARGS.scratch / "pods.json"
        self.input.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))

    def test_progress_is_on_stderr_one_line_per_image(self):
        run = audit("--output", "json", "--progress-after", "0s", "--timeout", "60s", self.input,
                    policies=self.policies)
        report = json.loads(run.stdout)  # stdout is the report alone
        self.assertEqual(len(report["summary"]["imagesNotFetched"]), 2)
        lines = [line for line in run.stderr.splitlines() if line.startswith("imagegate audit: ")]
        self.assertTrue(lines[0].startswith("imagegate audit: fetching the facts of 2 images"),
                        run.stderr)
        fetched = sorted(line.split(": ", 2)[2].split(" ")[0] for line in lines[1:])
        self.assertEqual(fetched, ["127.0.0.1:9/ci/one:1", "127.0.0.1:9/ci/two:1"], run.stderr)
        self.assertTrue(any("fetched 2/2 images: " in line for line in lines), run.stderr)
        self.assertNotIn("imagegate audit:", run.stdout)
        self.assertNotIn("fetched 1/2", run.stdout)

    def test_a_terminal_gets_progress_at_once(self):
        # stderr on a pseudo-terminal, stdout a pipe: progress at once, however quick the run.
        master, slave = pty.openpty()
        try:
            run = subprocess.run([str(ARGS.imagegate), "audit", "--policy", str(self.policies),
                                  "--output", "json", "--progress-after", "1h", str(self.input)],
                                 stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)
            os.close(slave)
            slave = None
            terminal = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side is closed and everything was read
                    break
                if not chunk:
                    break
                terminal += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        json.loads(run.stdout)
        text = terminal.decode().replace("\r\n", "\n")
        self.assertIn("imagegate audit: fetching the facts of 2 images\n", text)
        self.assertIn("imagegate audit: fetched 2/2 images: 127.0.0.1:9/ci/", text)

    def test_quiet_and_quick_runs_print_no_progress(self):
        for flags in (["--quiet", "--progress-after", "0s"], ["--progress-after", "1h"]):
            run = audit("--output", "json", *flags, self.input, policies=self.policies)
            json.loads(run.stdout)
            progress = [line for line in run.stderr.splitlines()
                        if line.startswith("imagegate audit: ")]
            self.assertEqual(progress, [], flags)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--imagegate", type=pathlib.Path, required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = ARGS.source_dir.resolve()
    ARGS.imagegate = ARGS.imagegate.resolve()
    ARGS.skipped_for_npm = False
    with tempfile.TemporaryDirectory(prefix="imagegate-audit-") as scratch:
        ARGS.scratch = pathlib.Path(scratch)
        program = unittest.main(argv=[sys.argv[0], *rest], exit=False, verbosity=2)
    if not program.result.wasSuccessful():
        return 1
    if ARGS.skipped_for_npm:
        print("SKIPPED: the npm registry cannot be reached, so a schema could not be installed "
              "(scripts/install-policyreport-schema.sh, scripts/install-sarif-schema.sh)",
              file=sys.stderr)
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
