#!/usr/bin/python3
"""imagegate's own image (scripts/build-image.sh), built from the binary under test:

  - the image config: numeric non-root USER 65532:65532, the entrypoint, linux + this arch;
  - the layer holds exactly the binary, the libraries `ldd` lists and the loader, the CA bundle
    (and OpenSSL's cert.pem link to it), passwd/group with user 65532, nsswitch.conf: no shell,
    no package manager, nothing else;
  - the image runs: unpacked, and the binary started in it (chroot, as user 65532) with nothing
    but the image's files, it lints the shipped policies (needs root for chroot; skipped without);
  - pushed to a real registry (tests/fixtures/registry), `imagegate check` with the shipped
    production policies passes it: imagegate passes its own rules.

usage: own_image_test.py --source-dir DIR --imagegate BINARY [unittest arguments]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

ARGS = None


def blob(layout, digest):
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


class OwnImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.layout = ARGS.scratch / "image"
        env = dict(os.environ, IMAGEGATE_BINARY=str(ARGS.imagegate))
        subprocess.run([str(ARGS.source_dir / "scripts/build-image.sh"), str(cls.layout)],
                       env=env, check=True, capture_output=True)
        cmake = (ARGS.source_dir / "CMakeLists.txt").read_text()
        cls.version = cmake.split("project(imagegate VERSION ", 1)[1].split()[0]
        index = json.loads((cls.layout / "index.json").read_text())
        (descriptor,) = index["manifests"]
        cls.tag = descriptor["annotations"]["org.opencontainers.image.ref.name"]
        cls.manifest = json.loads(blob(cls.layout, descriptor["digest"]))
        cls.config = json.loads(blob(cls.layout, cls.manifest["config"]["digest"]))
        (layer,) = cls.manifest["layers"]
        data = blob(cls.layout, layer["digest"])
        assert hashlib.sha256(data).hexdigest() == layer["digest"].split(":", 1)[1]
        cls.files = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            for member in tar.getmembers():
                content = tar.extractfile(member).read() if member.isfile() else None
                cls.files[member.name] = (member, content)

    def test_config(self):
        self.assertEqual(self.tag, self.version)
        self.assertEqual(self.config["config"]["User"], "65532:65532")
        self.assertEqual(self.config["config"]["Entrypoint"], ["/usr/local/bin/imagegate"])
        self.assertEqual(self.config["os"], "linux")
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True).stdout.strip()
        self.assertEqual(self.config["architecture"], arch)

    def test_exactly_the_binary_its_libraries_and_certificates(self):
        ldd = subprocess.run(["ldd", str(ARGS.imagegate)], capture_output=True, text=True,
                             check=True).stdout
        libraries = set()
        for line in ldd.splitlines():
            words = line.split()
            if "=>" in words and words[words.index("=>") + 1].startswith("/"):
                libraries.add(words[words.index("=>") + 1].lstrip("/"))
            elif words and words[0].startswith("/"):
                libraries.add(words[0].lstrip("/"))
        regular = {name for name, (member, _) in self.files.items() if member.isfile()}
        self.assertEqual(regular, libraries | {
            "usr/local/bin/imagegate", "etc/ssl/certs/ca-certificates.crt", "etc/passwd",
            "etc/group", "etc/nsswitch.conf"})
        links = {name: member.linkname for name, (member, _) in self.files.items()
                 if member.issym() or member.islnk()}
        self.assertEqual(links, {"usr/lib/ssl/cert.pem": "/etc/ssl/certs/ca-certificates.crt"})
        for name, (member, _) in self.files.items():
            self.assertEqual((member.uid, member.gid), (0, 0), name)
            self.assertFalse(member.mode & 0o6022, f"{name}: setuid/setgid or writable by others")
        for forbidden in ("bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox", "usr/bin/apt",
                          "usr/bin/dpkg"):
            self.assertNotIn(forbidden, self.files)
        # The CA bundle is the system's, whole.
        self.assertEqual(self.files["etc/ssl/certs/ca-certificates.crt"][1],
                         pathlib.Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())

    def test_user_65532_exists_without_a_shell(self):
        passwd = self.files["etc/passwd"][1].decode().splitlines()
        entry = next(line.split(":") for line in passwd if line.split(":")[2] == "65532")
        self.assertEqual(entry[3], "65532")
        self.assertEqual(entry[6], "/sbin/nologin")  # which does not exist: no login at all
        self.assertNotIn("sbin/nologin", self.files)
        self.assertIn("nonroot:x:65532:", self.files["etc/group"][1].decode())

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("chroot"), "chroot needs root")
    def test_runs_with_only_the_image_files(self):
        bundle = ARGS.scratch / "bundle"
        subprocess.run(["umoci", "unpack", "--image", f"{self.layout}:{self.tag}", str(bundle)],
                       check=True, capture_output=True)
        rootfs = bundle / "rootfs"
        libraries = subprocess.run(["ldd", str(ARGS.imagegate)], capture_output=True, text=True).stdout
        if "libasan" in libraries or "libtsan" in libraries:
            # The sanitizer runtimes read /proc/self/maps, which a bare chroot does not have.
            self.skipTest("sanitizer build: its runtime needs /proc, absent in the chroot")
        shutil.copytree(ARGS.source_dir / "policies", rootfs / "policies")
        result = subprocess.run(["chroot", "--userspec=65532:65532", str(rootfs),
                                 "/usr/local/bin/imagegate", "policy", "lint", "/policies"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        shipped = len(list((ARGS.source_dir / "policies").glob("*.yaml")))
        self.assertIn(f"{shipped} policies OK", result.stdout + result.stderr)

    def test_passes_its_own_production_policies(self):
        fixtures = ARGS.source_dir / "tests/fixtures/registry"
        work = ARGS.scratch / "registry"
        work.mkdir()
        subprocess.run([str(fixtures / "start-registry.sh"), "plain", str(work)], check=True,
                       capture_output=True)
        self.addCleanup(subprocess.run, [str(fixtures / "stop-registry.sh"), str(work)],
                        capture_output=True)
        env = dict(line.split("=", 1) for line in (work / "registry.env").read_text().splitlines()
                   if line and not line.startswith("#"))
        host = env["REGISTRY_HOST"].strip('"')
        reference = f"{host}/imagegate/imagegate:{self.tag}"
        # skopeo isolated from /etc/containers and ~, as the fixtures run it (lib.sh fx_skopeo).
        subprocess.run(["bash", "-c", f'. "{fixtures}/lib.sh" && fx_skopeo "$0" copy --quiet '
                        f'--dest-tls-verify=false "oci:$1:$2" "docker://$3"',
                        str(work), str(self.layout), self.tag, reference],
                       check=True, capture_output=True)
        config = work / "registries.yaml"
        config.write_text(f"registries: [{{host: '{host}', insecure: true}}]\n")
        result = subprocess.run([str(ARGS.imagegate), "check", "--output", "json", "--policy",
                                 str(ARGS.source_dir / "policies"), "--registry-config",
                                 str(config), reference], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        (report,) = json.loads(result.stdout)
        self.assertEqual(report["user"], "65532:65532")
        statuses = {f"{r['policy']}/{r['rule']}": r["status"] for r in report["results"]}
        self.assertEqual(statuses["production-baseline/non-root"], "pass")
        self.assertEqual(statuses["production-baseline/no-latest-tag"], "pass")
        # A tag is not a digest: the Audit rule reports it, and the chart's image.digest fixes it.
        self.assertEqual(statuses["production-hardening/pinned-by-digest"], "warn")
        pinned = subprocess.run([str(ARGS.imagegate), "check", "--output", "json", "--policy",
                                 str(ARGS.source_dir / "policies"), "--registry-config", str(config),
                                 f"{host}/imagegate/imagegate@{report['digest']}"],
                                capture_output=True, text=True)
        self.assertEqual(pinned.returncode, 0, pinned.stdout + pinned.stderr)
        (report,) = json.loads(pinned.stdout)
        self.assertEqual({r["status"] for r in report["results"]}, {"pass"})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--imagegate", type=pathlib.Path, required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = ARGS.source_dir.resolve()
    ARGS.imagegate = ARGS.imagegate.resolve()
    with tempfile.TemporaryDirectory(prefix="imagegate-image-") as scratch:
        ARGS.scratch = pathlib.Path(scratch)
        program = unittest.main(argv=[sys.argv[0], *rest], exit=False, verbosity=2)
        return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
