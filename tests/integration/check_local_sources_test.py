#!/usr/bin/python3
"""`imagegate check` on images that were never pushed, the real binary:

  - oci:DIR:TAG (the fixture layout of tests/fixtures/registry/build-images.sh) and
    docker-archive:FILE (the same images written by `skopeo copy ... docker-archive:`): the
    busybox image is denied by a forbiddenFiles shells policy (exit 1, /bin/sh and its layer
    named), the static one passes (exit 0); the reference each is judged as;
  - what goes wrong is a clear message and exit code 3 (unreadable source, absent tag, corrupt
    blob) or 2 (usage: empty path, two sources judged as one reference);
  - `--output sarif` validated against the SARIF 2.1.0 JSON schema from the npm package
    @microsoft/jest-sarif (scripts/install-sarif-schema.sh), with python3-jsonschema.
    When the npm registry cannot be reached the SARIF tests are skipped, saying so, and the
    driver exits 77, which CTest reports as skipped.

usage: check_local_sources_test.py --source-dir DIR --imagegate BINARY --work-dir DIR
                                   [unittest arguments]
"""
import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None
NPM_UNREACHABLE = 75
SKIPPED = 77

FILES_POLICY = """apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: image-files
spec:
  action: Enforce
  rules:
    - name: no-shells
      forbiddenFiles: {presets: [shells]}
"""

AUDIT_POLICY = """apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: registry-audit
spec:
  action: Audit
  rules:
    - name: allowed-registries
      allowedRegistries: ["registry.example.com"]
"""


def setUpModule():
    fixtures = ARGS.source_dir / "tests/fixtures/registry"
    ARGS.work_dir.mkdir(parents=True, exist_ok=True)
    images = ARGS.work_dir / "images"
    images.mkdir(exist_ok=True)
    # Built once per build tree; concurrent runs wait for the first (flock in the script).
    subprocess.run([str(fixtures / "build-images.sh"), str(images)], check=True,
                   capture_output=True)
    ARGS.layout = images / "oci"
    ARGS.policies = ARGS.scratch / "policies"
    ARGS.policies.mkdir()
    (ARGS.policies / "files.yaml").write_text(FILES_POLICY)
    (ARGS.policies / "audit.yaml").write_text(AUDIT_POLICY)
    ARGS.archives = {}
    for tag, reference in (("busybox", "registry.example.com/ci/busybox:1"),
                           ("static", "registry.example.com/ci/static:1")):
        archive = ARGS.scratch / f"{tag}.tar"
        # skopeo isolated from /etc/containers and ~, as the fixtures run it (lib.sh fx_skopeo).
        subprocess.run(["bash", "-c", f'. "{fixtures}/lib.sh" && fx_skopeo "$0" copy --quiet '
                        '"oci:$1:$2" "docker-archive:$3:$4"',
                        str(ARGS.scratch / "skopeo"), str(ARGS.layout), tag, str(archive),
                        reference], check=True, capture_output=True)
        ARGS.archives[tag] = archive


def check(*sources, output="json", policies=None):
    return subprocess.run([str(ARGS.imagegate), "check", "--output", output, "--policy",
                           str(policies or ARGS.policies), *map(str, sources)],
                          capture_output=True, text=True, timeout=120)


def results_by_rule(report):
    return {result["rule"]: result for result in report["results"]}


class CheckLocalSourcesTest(unittest.TestCase):
    def assert_shell_denied(self, report):
        shells = results_by_rule(report)["no-shells"]
        self.assertEqual(shells["status"], "fail", shells)
        self.assertIn("/bin/sh (layer 1/1", shells["message"])
        (sh,) = [f for f in shells["files"] if f["path"] == "/bin/sh"]
        self.assertEqual(sh["layerIndex"], 0)
        self.assertTrue(sh["layerDigest"].startswith("sha256:"), sh)

    def test_oci_layout_busybox_is_denied_and_static_passes(self):
        run = check(f"oci:{ARGS.layout}:busybox")
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        (report,) = json.loads(run.stdout)
        self.assertEqual(report["source"], "oci")
        # The layout names it by tag only: judged under the reserved .invalid host.
        self.assertEqual(report["reference"], "oci.invalid/oci:busybox")
        self.assertTrue(report["digest"].startswith("sha256:"))
        self.assert_shell_denied(report)
        self.assertEqual(results_by_rule(report)["allowed-registries"]["status"], "warn")

        run = check(f"oci:{ARGS.layout}:static")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        (report,) = json.loads(run.stdout)
        self.assertEqual(results_by_rule(report)["no-shells"]["status"], "pass")

    def test_a_layout_tag_that_is_a_full_reference_is_what_policies_judge(self):
        named = ARGS.scratch / "named"
        subprocess.run(["bash", "-c", f'. "{ARGS.source_dir}/tests/fixtures/registry/lib.sh" && '
                        'fx_skopeo "$0" copy --quiet "oci:$1:static" "oci:$2:$3"',
                        str(ARGS.scratch / "skopeo"), str(ARGS.layout), str(named),
                        "registry.example.com/ci/static:2"], check=True, capture_output=True)
        run = check(f"oci:{named}:registry.example.com/ci/static:2")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        (report,) = json.loads(run.stdout)
        self.assertEqual(report["reference"], "registry.example.com/ci/static:2")
        self.assertEqual(results_by_rule(report)["allowed-registries"]["status"], "pass")

    def test_oci_table_names_the_source_file_and_layer(self):
        run = check(f"oci:{ARGS.layout}:busybox", output="table")
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn(f"  source oci:{ARGS.layout}:busybox\n", run.stdout)
        self.assertIn("/bin/sh (layer 1/1", run.stdout)

    def test_docker_archive_busybox_is_denied_and_static_passes(self):
        run = check(f"docker-archive:{ARGS.archives['busybox']}",
                    f"docker-archive:{ARGS.archives['static']}")
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        busybox, static = json.loads(run.stdout)
        self.assertEqual(busybox["source"], "docker-archive")
        # The RepoTags entry is a full reference: policies see the name it will be pushed as.
        self.assertEqual(busybox["reference"], "registry.example.com/ci/busybox:1")
        self.assertNotIn("digest", busybox)  # no manifest in an archive; the image ID instead
        self.assertTrue(busybox["imageId"].startswith("sha256:"))
        self.assert_shell_denied(busybox)
        self.assertEqual(results_by_rule(busybox)["allowed-registries"]["status"], "pass")
        self.assertEqual(results_by_rule(static)["no-shells"]["status"], "pass")

        run = check(f"docker-archive:{ARGS.archives['static']}", output="table")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("  image ID sha256:", run.stdout)

    def test_the_same_image_from_layout_and_archive_has_the_same_image_id(self):
        run = check(f"oci:{ARGS.layout}:static", f"docker-archive:{ARGS.archives['static']}")
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        layout, archive = json.loads(run.stdout)
        self.assertEqual(layout["imageId"], archive["imageId"])

    def test_unreadable_sources_fail_with_exit_code_3(self):
        cases = {
            f"oci:{ARGS.scratch}/absent": "cannot open the directory",
            f"oci:{ARGS.layout}:nosuchtag": "no image tagged \"nosuchtag\"",
            f"oci:{ARGS.layout}": "name one as oci:DIR:TAG",
            f"docker-archive:{ARGS.scratch}/absent.tar": "No such file or directory",
            f"docker-archive:{ARGS.policies}/files.yaml": "not a readable tar file",
        }
        for source, message in cases.items():
            with self.subTest(source=source):
                run = check(source)
                self.assertEqual(run.returncode, 3, run.stdout + run.stderr)
                (report,) = json.loads(run.stdout)
                self.assertIn(f"cannot read {source}: ", report["error"])
                self.assertIn(message, report["error"])

    def test_corrupt_blobs_are_named(self):
        copy = ARGS.scratch / "corrupt" / "layout"
        shutil.copytree(ARGS.layout, copy)
        index = json.loads((copy / "index.json").read_text())
        (entry,) = [m for m in index["manifests"]
                    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "busybox"]
        manifest = json.loads((copy / "blobs/sha256" / entry["digest"][7:]).read_text())
        config = copy / "blobs/sha256" / manifest["config"]["digest"][7:]
        config.write_text(config.read_text().replace("65532", "00000"))
        run = check(f"oci:{copy}:busybox")
        self.assertEqual(run.returncode, 3, run.stdout + run.stderr)
        (report,) = json.loads(run.stdout)
        self.assertIn("does not match its digest " + manifest["config"]["digest"], report["error"])

        layer = copy / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 0x55
        config.write_text(config.read_text().replace("00000", "65532"))
        layer.write_bytes(bytes(data))
        run = check(f"oci:{copy}:busybox")
        self.assertNotEqual(run.returncode, 0, run.stdout + run.stderr)
        (report,) = json.loads(run.stdout)
        self.assertIn(manifest["layers"][0]["digest"], report["filesError"])

    def test_usage_errors_exit_2(self):
        run = check("oci:")
        self.assertEqual(run.returncode, 2, run.stdout + run.stderr)
        self.assertIn("names no directory", run.stderr)
        twin = ARGS.scratch / "twin" / "oci"
        shutil.copytree(ARGS.layout, twin)
        run = check(f"oci:{ARGS.layout}:static", f"oci:{twin}:static")
        self.assertEqual(run.returncode, 2, run.stdout + run.stderr)
        self.assertIn("are both judged as oci.invalid/oci:static", run.stderr)


class SarifOutputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        install = subprocess.run([str(ARGS.source_dir / "scripts/install-sarif-schema.sh")],
                                 capture_output=True, text=True)
        if install.returncode == NPM_UNREACHABLE:
            ARGS.skipped_for_npm = True
            raise unittest.SkipTest("SARIF schema not installed: " + install.stderr.strip())
        if install.returncode != 0:
            raise AssertionError("install-sarif-schema.sh failed:\n" + install.stderr)
        import jsonschema  # python3-jsonschema (scripts/install-deps.sh)
        schema = json.loads(
            (ARGS.source_dir / ".cache/tools/sarif/sarif-schema-2.1.0.json").read_text())
        cls.validator = jsonschema.validators.validator_for(schema)(schema)

    def sarif(self, *sources, expected_exit):
        run = check(*sources, output="sarif")
        self.assertEqual(run.returncode, expected_exit, run.stdout + run.stderr)
        log = json.loads(run.stdout)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in self.validator.iter_errors(log)]
        self.assertEqual(errors, [], json.dumps(log, indent=1)[:4000])
        return log

    def test_denied_and_clean_images_validate_against_the_schema(self):
        log = self.sarif(f"oci:{ARGS.layout}:busybox", f"oci:{ARGS.layout}:static",
                         f"docker-archive:{ARGS.archives['busybox']}", expected_exit=1)
        self.assertEqual(log["version"], "2.1.0")
        (run,) = log["runs"]
        driver = run["tool"]["driver"]
        self.assertEqual(driver["name"], "imagegate")
        self.assertTrue(driver["version"])
        self.assertTrue(driver["informationUri"].startswith("https://"))
        rule_ids = [rule["id"] for rule in driver["rules"]]
        self.assertEqual(sorted(rule_ids),
                         ["image-files/no-shells", "registry-audit/allowed-registries"])
        self.assertTrue(run["invocations"][0]["executionSuccessful"])

        shells = [r for r in run["results"] if r["ruleId"] == "image-files/no-shells"]
        # busybox from the layout and from the archive; the static image passes (no result).
        self.assertEqual(len(shells), 2, json.dumps(run["results"], indent=1))
        for result in shells:
            self.assertEqual(result["level"], "error")
            self.assertIn("Fix:", result["message"]["text"])
            self.assertEqual(rule_ids[result["ruleIndex"]], "image-files/no-shells")
            (sh,) = [loc for loc in result["locations"]
                     if loc["physicalLocation"]["artifactLocation"]["uri"] == "/bin/sh"]
            self.assertEqual(sh["properties"]["layerIndex"], 0)
            self.assertTrue(sh["properties"]["layerDigest"].startswith("sha256:"))
        images = sorted(r["locations"][0]["logicalLocations"][0]["name"] for r in shells)
        self.assertEqual(images, ["oci.invalid/oci:busybox", "registry.example.com/ci/busybox:1"])

        audit = [r for r in run["results"] if r["ruleId"] == "registry-audit/allowed-registries"]
        # Only the layout's images are outside registry.example.com; Audit reports a warning.
        self.assertEqual(len(audit), 2, json.dumps(run["results"], indent=1))
        self.assertEqual({r["level"] for r in audit}, {"warning"})

    def test_an_unreadable_source_is_a_notification(self):
        log = self.sarif(f"oci:{ARGS.layout}:nosuchtag", expected_exit=3)
        invocation = log["runs"][0]["invocations"][0]
        self.assertFalse(invocation["executionSuccessful"])
        (note,) = invocation["toolExecutionNotifications"]
        self.assertEqual(note["level"], "error")
        self.assertIn("no image tagged \"nosuchtag\"", note["message"]["text"])


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--imagegate", type=pathlib.Path, required=True)
    parser.add_argument("--work-dir", type=pathlib.Path, required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = ARGS.source_dir.resolve()
    ARGS.imagegate = ARGS.imagegate.resolve()
    ARGS.work_dir = ARGS.work_dir.resolve()
    ARGS.skipped_for_npm = False
    with tempfile.TemporaryDirectory(prefix="imagegate-local-") as scratch:
        ARGS.scratch = pathlib.Path(scratch)
        program = unittest.main(argv=[sys.argv[0], *rest], exit=False, verbosity=2)
    if not program.result.wasSuccessful():
        return 1
    if ARGS.skipped_for_npm:
        print("SKIPPED: the npm registry cannot be reached, so the SARIF schema could not be "
              "installed (scripts/install-sarif-schema.sh)", file=sys.stderr)
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
