#!/usr/bin/python3
"""Tests of charts/imagegate with the real helm (3.17.2), offline.

There is no kube-apiserver here, so the chart is checked as far as it can be without one:
  - helm lint, and helm template with the default values and every documented mode;
  - values.schema.json rejects typos and unknown keys;
  - every rendered object validates against the Kubernetes OpenAPI schemas (kubernetes-models),
    and has no field the Kubernetes API does not know (the client's generated field tables);
  - the properties issue 8 asks for: hardened securityContext, webhook fields, the release
    namespace always excluded, timeoutSeconds and --max-review-timeout agreeing, ...;
  - the rendered policies load with `imagegate policy lint`, laid out as the kubelet mounts a
    ConfigMap (symlinks through ..data);
  - the closest faithful stand-in for the API server: the real `imagegate serve` started with the
    Deployment's own arguments and the rendered certificate, policies and registry settings,
    called the way the API server calls it (POST /validate?timeout=10s to the Service's DNS name,
    the certificate verified against the webhook's caBundle).
What cannot be run without a cluster: `lookup` (helm template always sees no existing Secret).
The test checks the branch that reuses the Secret by substituting what lookup would return.

usage: chart_test.py --source-dir DIR --imagegate BINARY [unittest arguments]
Tools come from .cache/tools (scripts/install-helm.sh): helm, the node validator, the field table.
"""
import argparse
import base64
import copy
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import yaml

ARGS = None  # set in main()
NAMESPACE = "imagegate-system"
RELEASE = "gate"
SERVICE_HOST = f"{RELEASE}-imagegate.{NAMESPACE}.svc"
# Kinds of CRDs the offline checks have no schema or field table for (kubernetes-models and the
# client's field tables know the Kubernetes API and cert-manager only). They are skipped by the
# schema and unknown-field tests, explicitly and only these; test_service_monitor checks the
# Prometheus Operator's ServiceMonitor field by field instead.
SCHEMALESS_KINDS = {"ServiceMonitor"}


def chart_dir():
    return ARGS.source_dir / "charts" / "imagegate"


def helm(*args, check=True):
    env = dict(os.environ)
    # helm keeps caches and repositories here; none of the user's configuration may leak in.
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = str(ARGS.scratch / "helm-home" / var)
    result = subprocess.run([str(ARGS.helm), *args], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def render_text(*values_args, chart=None):
    return helm("template", RELEASE, str(chart or chart_dir()), "--namespace", NAMESPACE,
                "--kube-version", "1.30.0", *values_args).stdout


def render(*values_args, chart=None):
    """The rendered objects, keyed by (kind, name)."""
    objects = {}
    for doc in yaml.safe_load_all(render_text(*values_args, chart=chart)):
        if doc:
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def values_file(content):
    path = pathlib.Path(tempfile.mkstemp(suffix=".yaml", dir=ARGS.scratch)[1])
    path.write_text(yaml.safe_dump(content))
    return ["-f", str(path)]


def one(objects, kind):
    found = [obj for (k, _), obj in objects.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def flags(objects):
    """The Deployment's serve flags as a dict (--name=value)."""
    args = container(objects)["args"]
    assert args[0] == "serve"
    return dict(arg[2:].split("=", 1) for arg in args[1:])


# A test registry CA (any PEM certificate will do; the content is only copied around).
def test_ca_pem():
    key = ARGS.scratch / "ca.key"
    pem = ARGS.scratch / "ca.pem"
    if not pem.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(pem),
                        "-subj", "/CN=test registry CA", "-days", "2"], check=True,
                       capture_output=True)
    return pem.read_text()


def scenarios():
    """Every documented mode, as helm arguments."""
    return {
        "default": [],
        "cert-manager": ["--set", "tls.certManager.enabled=true"],
        "cert-manager-issuer": ["--set", "tls.certManager.enabled=true",
                                "--set", "tls.certManager.issuerRef.name=corp-ca",
                                "--set", "tls.certManager.issuerRef.kind=ClusterIssuer"],
        "existing-configmap": ["--set", "policies.existingConfigMap=corp-policies"],
        "audit": ["--set", "mode=audit"],
        "failure-policy-ignore": ["--set", "webhook.failurePolicy=Ignore",
                                  "--set", "webhook.timeoutSeconds=5"],
        "private-registry": values_file({
            "registry": {
                "hosts": [{"host": "registry.corp.example:5000", "caCertificate": test_ca_pem()},
                          {"host": "localhost:5000", "insecure": True}],
                "credentials": {"auths": {"registry.corp.example:5000":
                                          {"username": "robot", "password": "s3cret"},
                                          "ghcr.io": {"identitytoken": "token"}}}},
            "imagePullSecrets": [{"name": "pull-imagegate"}]}),
        "existing-registry-secret": ["--set", "registry.credentials.existingSecret=corp-pull"],
        "redis-cache": values_file({"cache": {
            "memory": "64Mi", "tagTtl": "30s",
            "persistence": {"sizeLimit": "2Gi", "maxBytes": "1536Mi"},
            "redis": {"address": "redis.cache.svc:6379", "timeout": "150ms",
                      "passwordSecret": {"name": "imagegate-redis", "key": "redis-password"}}}}),
        "no-cache-persistence": ["--set", "cache.persistence.enabled=false"],
        "service-monitor": values_file({"metrics": {"serviceMonitor": {
            "enabled": True, "interval": "15s", "labels": {"release": "prometheus"}}}}),
        "service-monitor-cert-manager": ["--set", "metrics.serviceMonitor.enabled=true",
                                         "--set", "tls.certManager.enabled=true"],
        "service-monitor-insecure": ["--set", "metrics.serviceMonitor.enabled=true",
                                     "--set", "metrics.serviceMonitor.insecureSkipVerify=true"],
        "hard-anti-affinity-one-replica": ["--set", "podAntiAffinity=hard", "--set", "replicas=1",
                                           "--set", "podDisruptionBudget.enabled=false"],
        "options": values_file({"priorityClassName": "system-cluster-critical",
                                "nodeSelector": {"kubernetes.io/os": "linux"},
                                "tolerations": [{"key": "dedicated", "operator": "Equal",
                                                 "value": "infra", "effect": "NoSchedule"}],
                                "podAnnotations": {"team": "platform"},
                                "podLabels": {"tier": "admission"},
                                "webhook": {"objectSelector": {"matchExpressions": [
                                    {"key": "imagegate.dev/skip", "operator": "DoesNotExist"}]}},
                                "image": {"digest": "sha256:" + "a" * 64},
                                "serviceAccount": {"create": False, "name": "existing"}}),
    }


def materialize(directory, files):
    """Lays files out as the kubelet mounts a ConfigMap or Secret: the real files in a timestamped
    directory, ..data pointing at it, and each name a symlink through ..data."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / "..2026_12_05_00_00_00.000000001"
    stamp.mkdir()
    for name, content in files.items():
        (stamp / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        (directory / name).symlink_to(pathlib.Path("..data") / name)
    (directory / "..data").symlink_to(stamp.name)
    return directory


def volume_files(objects, volume, fullname=f"{RELEASE}-imagegate"):
    """The files a Deployment volume puts in the container, from the rendered ConfigMap/Secret."""
    if "emptyDir" in volume:
        return {}
    if "configMap" in volume:
        source = objects[("ConfigMap", volume["configMap"]["name"])]["data"]
        decode = str.encode
        items = volume["configMap"].get("items")
    else:
        source = objects[("Secret", volume["secret"]["secretName"])]["data"]
        decode = base64.b64decode
        items = volume["secret"].get("items")
    if items is None:
        items = [{"key": key, "path": key} for key in source]
    return {item["path"]: decode(source[item["key"]]) for item in items}


def mount_all(objects, root):
    """Every volume of the Deployment under root + its mountPath; returns the serve flags with
    /etc/imagegate rewritten to root/etc/imagegate."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in pod["containers"][0]["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        materialize(target, volume_files(objects, volumes[mount["name"]]))
    # The registry config names mounted files by absolute path: point it into root too.
    registry_dir = root / "etc/imagegate/registry"
    config = (registry_dir / "registries.yaml").resolve()
    config.write_text(config.read_text().replace("/etc/imagegate/", f"{root}/etc/imagegate/")
                      .replace("/var/cache/imagegate", f"{root}/var/cache/imagegate"))
    return {name: value.replace("/etc/imagegate/", f"{root}/etc/imagegate/")
            for name, value in flags(objects).items()}


def run_imagegate(*args, **kwargs):
    return subprocess.run([str(ARGS.imagegate), *args], capture_output=True, text=True, **kwargs)


def strict_field_problems(obj, type_name, fields, path=""):
    """Fields of obj that the Kubernetes type does not have, recursively."""
    problems = []
    if type_name.startswith("Array<") and isinstance(obj, list):
        for i, item in enumerate(obj):
            problems += strict_field_problems(item, type_name[6:-1], fields, f"{path}[{i}]")
        return problems
    match = re.match(r"^\{ \[key: string\]: (.*); \}$", type_name)
    if match and isinstance(obj, dict):
        for key, value in obj.items():
            problems += strict_field_problems(value, match.group(1), fields, f"{path}.{key}")
        return problems
    if not isinstance(obj, dict):
        return problems  # a scalar, or IntOrString
    if type_name not in fields:
        # An object of a type without a field table would go unchecked: only free-form ones may.
        if type_name not in ("any", "object"):
            problems.append(f"{path}: no field table for type {type_name}")
        return problems
    for key, value in obj.items():
        if key not in fields[type_name]:
            problems.append(f"{path}.{key}: unknown field of {type_name}")
        else:
            problems += strict_field_problems(value, fields[type_name][key], fields, f"{path}.{key}")
    return problems


def cert_manager_fields():
    """Field tables of the cert-manager types, in the form of k8s-fields.json, read from the
    TypeScript declarations of @kubernetes-models/cert-manager (generated from cert-manager's CRD
    schemas): each `export interface INAME ... {` block lists its fields as `"name"?: Type;` at
    four spaces (as does its model class), and `export type { ISHORT as ILONG }` names the long aliases other files use.
    Object metadata is the Kubernetes ObjectMeta of k8s-fields.json."""
    root = ARGS.tools / "validator/node_modules/@kubernetes-models/cert-manager"
    interfaces, aliases = {}, {}
    for path in root.rglob("*.d.ts"):
        text = path.read_text()
        # The model class repeats its interface's fields, inherited ones included (IssuerSpec
        # extends IssuerConfig with an empty interface body).
        blocks = re.findall(r"^export interface (I\w+)[^{]*\{\n(.*?)^\}", text, re.S | re.M)
        blocks += re.findall(r"^export declare class \w+ extends Model<(I\w+)>[^{]*\{\n(.*?)^\}",
                             text, re.S | re.M)
        for name, body in blocks:
            fields = dict(re.findall(r'^    "(\w+)"\??: (.+);$', body, re.M))
            interfaces.setdefault(name, {}).update(fields)
        for short, long in re.findall(r"(I\w+) as (I\w+)", text):
            aliases[long] = short

    def resolve(type_name):
        if type_name.startswith("Array<"):
            return f"Array<{resolve(type_name[6:-1])}>"
        if "ObjectMeta" in type_name:
            return "V1ObjectMeta"
        return aliases.get(type_name, type_name)
    return {name: {field: resolve(t) for field, t in fields.items()}
            for name, fields in interfaces.items()}


class LintAndSchemaTest(unittest.TestCase):
    def test_helm_lint_strict_in_every_mode(self):
        for name, args in scenarios().items():
            with self.subTest(name):
                result = helm("lint", "--strict", str(chart_dir()), "--namespace", NAMESPACE, *args,
                              check=False)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_typos_and_wrong_values_fail(self):
        cases = {
            "replicaCount": (["--set", "replicaCount=2"], "replicaCount"),
            "nested typo": (["--set", "webhook.failurPolicy=Ignore"], "failurPolicy"),
            "server flag typo": (["--set", "server.thread=4"], "thread"),
            "mode": (["--set", "mode=dryrun"], "mode"),
            "timeout above 30": (["--set", "webhook.timeoutSeconds=31"], "timeoutSeconds"),
            "failurePolicy": (["--set", "webhook.failurePolicy=fail"], "failurePolicy"),
            "latest tag": (["--set", "image.tag=latest"], "image.tag"),
            "policy field typo": (values_file({"policies": {"inline": {"p": {"rules": [
                {"name": "r", "privilegd": {"allowed": False}}]}}}}), "privilegd"),
            "policy action": (values_file({"policies": {"inline": {"p": {
                "action": "Deny", "rules": [{"name": "r", "runAsNonRoot": {}}]}}}}), "action"),
            "two rule types": (values_file({"policies": {"inline": {"p": {"rules": [
                {"name": "r", "runAsNonRoot": {}, "privileged": {}}]}}}}), "properties"),
            "registry host typo": (values_file({"registry": {"hosts": [
                {"host": "r.example", "insecur": True}]}}), "insecur"),
            "credentials without password": (values_file({"registry": {"credentials": {
                "auths": {"r.example": {"username": "u"}}}}}), "auths"),
        }
        for name, (args, word) in cases.items():
            with self.subTest(name):
                result = helm("template", RELEASE, str(chart_dir()), *args, check=False)
                self.assertNotEqual(result.returncode, 0, f"{name} rendered:\n{result.stdout[:300]}")
                self.assertIn(word, result.stderr)

    def test_schema_rejects_additional_properties_everywhere(self):
        schema = json.loads((chart_dir() / "values.schema.json").read_text())
        unbounded = []

        def walk(node, path):
            if isinstance(node, dict):
                if node.get("type") == "object" and node.get("additionalProperties", True) is True:
                    unbounded.append(path or "(root)")
                for key, value in node.items():
                    walk(value, f"{path}/{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{path}/{i}")
        walk(schema, "")
        self.assertEqual(unbounded, [], "object schemas that accept any key")

    def test_schema_knows_every_rule_type_of_the_loader(self):
        # The loader lists the rule types it accepts when it meets an unknown one; the schema must
        # accept exactly those, or a new rule type would be refused by helm (or a removed one only
        # by the server, at start).
        policy = ARGS.scratch / "unknown-rule.yaml"
        policy.write_text("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\n"
                          "spec:\n  rules:\n    - name: r\n      noSuchRule: {}\n")
        output = run_imagegate("policy", "lint", str(policy)).stdout
        match = re.search(r"allowed here: ([^)]*)\)", output)
        self.assertIsNotNone(match, output)
        loader_types = {word.strip() for word in match.group(1).split(",")} - {"name"}
        schema = json.loads((chart_dir() / "values.schema.json").read_text())
        rule = schema["properties"]["policies"]["properties"]["inline"]["additionalProperties"][
            "properties"]["rules"]["items"]
        self.assertEqual(set(rule["properties"]) - {"name"}, loader_types)

    def test_every_setting_has_a_default_in_values_yaml(self):
        # Every key of values.yaml is in the schema (helm lint above would fail on the chart's own
        # defaults otherwise), and every setting of the schema has a default in values.yaml, so
        # the README table, generated from values.yaml, lists them all. Kubernetes objects passed
        # through (resources, the webhook's objectSelector) have optional parts of their own.
        schema = json.loads((chart_dir() / "values.schema.json").read_text())
        values = yaml.safe_load((chart_dir() / "values.yaml").read_text())
        passed_through = {"resources", "webhook.objectSelector"}
        missing = []

        def walk(node, value, path):
            for key, sub in node.get("properties", {}).items():
                if not isinstance(value, dict) or key not in value:
                    missing.append(f"{path}{key}")
                elif "properties" in sub and f"{path}{key}" not in passed_through:
                    walk(sub, value[key], f"{path}{key}.")
        walk(schema, values, "")
        self.assertEqual(missing, [], "schema properties with no default in values.yaml")

    def test_readme_table_matches_values(self):
        result = subprocess.run([sys.executable, str(ARGS.source_dir / "tests/chart/values_table.py"),
                                 "--check", str(chart_dir())], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_app_version_is_the_project_version(self):
        chart = yaml.safe_load((chart_dir() / "Chart.yaml").read_text())
        cmake = (ARGS.source_dir / "CMakeLists.txt").read_text()
        version = re.search(r"project\(imagegate VERSION ([0-9.]+)", cmake).group(1)
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["appVersion"], version)


class RenderedObjectsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {name: render_text(*args) for name, args in scenarios().items()}
        cls.objects = {name: {(d["kind"], d["metadata"]["name"]): d
                              for d in yaml.safe_load_all(text) if d}
                       for name, text in cls.rendered.items()}

    def run_validator(self, text):
        work = ARGS.scratch / "validator"
        if not work.exists():
            work.mkdir()
            shutil.copy(ARGS.source_dir / "tests/chart/validate.mjs", work)
            (work / "package.json").write_text('{"type": "module"}')
            (work / "node_modules").symlink_to(ARGS.tools / "validator" / "node_modules")
        (work / "rendered.yaml").write_text(text)
        return subprocess.run(["node", str(work / "validate.mjs"), str(work / "rendered.yaml")],
                              capture_output=True, text=True)

    def test_every_object_validates_against_the_kubernetes_schemas(self):
        # One node process for all modes (each start costs ~0.5 s). CRDs it has no schema for are
        # left out, by kind (SCHEMALESS_KINDS).
        documents = [yaml.safe_dump(obj) for objects in self.objects.values()
                     for (kind, _), obj in objects.items() if kind not in SCHEMALESS_KINDS]
        result = self.run_validator("\n---\n".join(documents))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertNotIn("FAIL", result.stdout)

    def test_the_validator_catches_a_broken_object(self):
        webhook = copy.deepcopy(one(self.objects["default"], "ValidatingWebhookConfiguration"))
        webhook["webhooks"][0]["sideEffects"] = "Sometimes"
        webhook["webhooks"][0]["timeoutSeconds"] = "10"
        result = self.run_validator(yaml.safe_dump(webhook))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("sideEffects", result.stdout)

    def test_no_unknown_fields(self):
        fields = json.loads((ARGS.tools / "k8s-fields.json").read_text())
        fields.update(cert_manager_fields())
        self.assertIn("usages", fields["ICertificateSpec"])
        self.assertIn("selfSigned", fields["IIssuerSpec"])
        # The check itself: a misspelt field deep inside is found.
        broken = copy.deepcopy(one(self.objects["default"], "Deployment"))
        broken["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "readOnlyRootFilesytem"] = True
        self.assertEqual(strict_field_problems(broken, "V1Deployment", fields),
                         [".spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem:"
                          " unknown field of V1SecurityContext"])
        checked = set()
        skipped = set()
        for mode, objects in self.objects.items():
            for (kind, name), obj in objects.items():
                if kind in SCHEMALESS_KINDS:
                    skipped.add(kind)
                    continue
                type_name = "V1" + kind
                if obj["apiVersion"].startswith("cert-manager.io/"):
                    type_name = "I" + kind  # cert-manager's own types (cert_manager_fields)
                self.assertIn(type_name, fields, f"{mode}: no field table for {kind}")
                self.assertEqual(strict_field_problems(obj, type_name, fields), [],
                                 f"{mode}: {kind}/{name}")
                checked.add(kind)
        self.assertGreaterEqual(checked, {"Deployment", "ValidatingWebhookConfiguration", "Service",
                                          "ServiceAccount", "Secret", "ConfigMap",
                                          "PodDisruptionBudget", "Certificate", "Issuer"})
        self.assertEqual(skipped, SCHEMALESS_KINDS)
        broken = copy.deepcopy(self.objects["cert-manager"][("Certificate", f"{RELEASE}-imagegate-ca")])
        broken["spec"]["privateKey"]["sise"] = 256
        self.assertEqual(strict_field_problems(broken, "ICertificate", fields),
                         [".spec.privateKey.sise: unknown field of ICertificatePrivateKey"])

    def test_hardened_pod(self):
        for mode, objects in self.objects.items():
            with self.subTest(mode):
                pod = one(objects, "Deployment")["spec"]["template"]["spec"]
                self.assertIs(pod["automountServiceAccountToken"], False)
                self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
                self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
                sc = pod["containers"][0]["securityContext"]
                self.assertIs(sc["runAsNonRoot"], True)
                self.assertIsInstance(sc["runAsUser"], int)
                self.assertGreater(sc["runAsUser"], 0)
                self.assertIs(sc["readOnlyRootFilesystem"], True)
                self.assertIs(sc["allowPrivilegeEscalation"], False)
                self.assertIs(sc["privileged"], False)
                self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
                self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertNotIn("add", sc["capabilities"])
                self.assertFalse(pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"))
                for volume in pod["volumes"]:
                    self.assertNotIn("hostPath", volume)
        sa = one(self.objects["default"], "ServiceAccount")
        self.assertIs(sa["automountServiceAccountToken"], False)

    def test_availability(self):
        objects = self.objects["default"]
        deployment = one(objects, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        c = pod["containers"][0]
        self.assertEqual(deployment["spec"]["replicas"], 2)
        term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["podAffinityTerm"]["labelSelector"]["matchLabels"],
                         deployment["spec"]["selector"]["matchLabels"])
        pdb = one(objects, "PodDisruptionBudget")
        self.assertEqual(pdb["spec"]["selector"], deployment["spec"]["selector"])
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        for kind in ("requests", "limits"):
            self.assertEqual(set(c["resources"][kind]), {"cpu", "memory"})
        # Probes over HTTPS on the serving port.
        port = c["ports"][0]
        self.assertEqual(flags(objects)["listen"], f"0.0.0.0:{port['containerPort']}")
        self.assertEqual(flags(render("--set", "listenAddress=[::]"))["listen"],
                         f"[::]:{port['containerPort']}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            self.assertEqual(c[probe]["httpGet"], {"path": path, "port": port["name"],
                                                   "scheme": "HTTPS"})
        # The grace period covers the drain period and both shutdown waits.
        f = flags(objects)
        drain, shutdown = int(f["drain-period"][:-1]), int(f["shutdown-timeout"][:-1])
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain + 2 * shutdown)
        hard = one(self.objects["hard-anti-affinity-one-replica"], "Deployment")
        self.assertIn("requiredDuringSchedulingIgnoredDuringExecution",
                      hard["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"])
        self.assertNotIn("PodDisruptionBudget",
                         {k for k, _ in self.objects["hard-anti-affinity-one-replica"]})

    def test_webhook(self):
        for mode, objects in self.objects.items():
            with self.subTest(mode):
                config = one(objects, "ValidatingWebhookConfiguration")
                self.assertEqual(len(config["webhooks"]), 1)
                hook = config["webhooks"][0]
                self.assertEqual(hook["name"], "validate.imagegate.dev")
                self.assertEqual(hook["admissionReviewVersions"], ["v1"])
                self.assertEqual(hook["sideEffects"], "None")
                self.assertEqual(hook["matchPolicy"], "Equivalent")
                expected = ("Ignore", 5) if mode == "failure-policy-ignore" else ("Fail", 10)
                self.assertEqual((hook["failurePolicy"], hook["timeoutSeconds"]), expected)
                # The server's review budget is the same number.
                self.assertEqual(flags(objects)["max-review-timeout"], f"{hook['timeoutSeconds']}s")
                service = one(objects, "Service")
                self.assertEqual(hook["clientConfig"]["service"], {
                    "name": service["metadata"]["name"], "namespace": NAMESPACE,
                    "path": "/validate", "port": service["spec"]["ports"][0]["port"]})
                self.assertEqual(service["spec"]["ports"][0]["targetPort"],
                                 container(objects)["ports"][0]["name"])
                resources = {}
                for rule in hook["rules"]:
                    self.assertEqual(rule["operations"], ["CREATE", "UPDATE"])
                    self.assertEqual(rule["apiVersions"], ["v1"])
                    for group in rule["apiGroups"]:
                        resources.setdefault(group, set()).update(rule["resources"])
                self.assertEqual(resources, {
                    "": {"pods", "pods/ephemeralcontainers", "replicationcontrollers"},
                    "apps": {"deployments", "statefulsets", "daemonsets", "replicasets"},
                    "batch": {"jobs", "cronjobs"}})

    def test_timeouts_agree_for_every_allowed_value(self):
        for seconds in (1, 7, 30):
            objects = render("--set", f"webhook.timeoutSeconds={seconds}")
            hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
            self.assertEqual(hook["timeoutSeconds"], seconds)
            self.assertEqual(flags(objects)["max-review-timeout"], f"{seconds}s")

    def namespace_exclusions(self, objects):
        hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
        expressions = hook["namespaceSelector"]["matchExpressions"]
        self.assertEqual(len(expressions), 1)
        self.assertEqual(expressions[0]["key"], "kubernetes.io/metadata.name")
        self.assertEqual(expressions[0]["operator"], "NotIn")
        return expressions[0]["values"]

    def test_own_namespace_always_excluded(self):
        self.assertEqual(self.namespace_exclusions(self.objects["default"]),
                         [NAMESPACE, "kube-system"])
        # Not even an empty list, or one that names other namespaces only, lets it in.
        self.assertEqual(self.namespace_exclusions(render("--set", "webhook.excludeNamespaces=null")),
                         [NAMESPACE])
        self.assertEqual(self.namespace_exclusions(render(*values_file(
            {"webhook": {"excludeNamespaces": []}}))), [NAMESPACE])
        self.assertEqual(self.namespace_exclusions(render(*values_file(
            {"webhook": {"excludeNamespaces": ["tenant-x", NAMESPACE]}}))), [NAMESPACE, "tenant-x"])

    def test_serve_flags_are_real_and_complete(self):
        # Every flag the chart passes exists, and every flag serve has is set by the chart (so a
        # new flag makes this test ask for a value).
        help_text = run_imagegate("serve", "--help").stdout
        serve_flags = set(re.findall(r"^\s+--([a-z-]+)", help_text, re.M)) - {"help"}
        self.assertIn("max-review-timeout", serve_flags)
        self.assertEqual(set(flags(self.objects["default"])), serve_flags)

    def test_generated_tls(self):
        objects = self.objects["default"]
        secret = objects[("Secret", f"{RELEASE}-imagegate-tls")]
        self.assertEqual(secret["type"], "kubernetes.io/tls")
        ca = base64.b64decode(secret["data"]["ca.crt"])
        hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
        # The caBundle is the CA in the Secret (one generation per render, not one per template).
        self.assertEqual(base64.b64decode(hook["clientConfig"]["caBundle"]), ca)
        (ARGS.scratch / "gen-ca.crt").write_bytes(ca)
        (ARGS.scratch / "gen-tls.crt").write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(ARGS.scratch / "gen-ca.crt"),
                                 "-verify_hostname", SERVICE_HOST, "-purpose", "sslserver",
                                 str(ARGS.scratch / "gen-tls.crt")], capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        # The key is never in the CA's place and the pod mounts only the serving pair.
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
        self.assertEqual([i["key"] for i in tls_volume["secret"]["items"]], ["tls.crt", "tls.key"])

    def test_generated_tls_is_kept_across_upgrades(self):
        # lookup needs a cluster: helm template always gets nothing. The template must ask for the
        # Secret it renders...
        helpers = (chart_dir() / "templates/_helpers.tpl").read_text()
        self.assertIn('lookup "v1" "Secret" .Release.Namespace (include "imagegate.tlsSecretName" .)',
                      helpers)
        # ...and when lookup returns it, reuse it byte for byte. Simulated: a copy of the chart
        # whose lookup is replaced by the Secret of a first render, as the API would return it.
        first = self.objects["default"][("Secret", f"{RELEASE}-imagegate-tls")]
        copy_dir = ARGS.scratch / "chart-with-existing-secret"
        shutil.copytree(chart_dir(), copy_dir)
        data = " ".join(f'"{k}" "{v}"' for k, v in first["data"].items())
        patched = helpers.replace(
            'lookup "v1" "Secret" .Release.Namespace (include "imagegate.tlsSecretName" .)',
            f'dict "data" (dict {data})')
        self.assertNotEqual(patched, helpers)
        (copy_dir / "templates/_helpers.tpl").write_text(patched)
        upgraded = render(chart=copy_dir)
        self.assertEqual(upgraded[("Secret", f"{RELEASE}-imagegate-tls")]["data"], first["data"])
        hook = one(upgraded, "ValidatingWebhookConfiguration")["webhooks"][0]
        self.assertEqual(hook["clientConfig"]["caBundle"], first["data"]["ca.crt"])
        # Unchanged certificate: no rollout of the pods for it.
        annotation = lambda objs: one(objs, "Deployment")["spec"]["template"]["metadata"][
            "annotations"]["checksum/tls"]
        self.assertEqual(annotation(upgraded), annotation(render(chart=copy_dir)))

    def test_cert_manager(self):
        for mode in ("cert-manager", "cert-manager-issuer"):
            with self.subTest(mode):
                objects = self.objects[mode]
                config = one(objects, "ValidatingWebhookConfiguration")
                hook = config["webhooks"][0]
                self.assertNotIn("caBundle", hook["clientConfig"])
                ref = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
                namespace, name = ref.split("/")
                self.assertEqual(namespace, NAMESPACE)
                certificate = objects[("Certificate", name)]
                self.assertEqual(certificate["metadata"]["namespace"], NAMESPACE)
                self.assertIn(SERVICE_HOST, certificate["spec"]["dnsNames"])
                pod = one(objects, "Deployment")["spec"]["template"]["spec"]
                tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
                self.assertEqual(tls_volume["secret"]["secretName"], certificate["spec"]["secretName"])
                self.assertNotIn(("Secret", certificate["spec"]["secretName"]), objects)
        own_ca = self.objects["cert-manager"]
        serving = own_ca[("Certificate", f"{RELEASE}-imagegate-serving")]
        issuer = own_ca[(serving["spec"]["issuerRef"]["kind"], serving["spec"]["issuerRef"]["name"])]
        ca_cert = own_ca[("Certificate", f"{RELEASE}-imagegate-ca")]
        self.assertEqual(issuer["spec"]["ca"]["secretName"], ca_cert["spec"]["secretName"])
        self.assertIs(ca_cert["spec"]["isCA"], True)
        given = self.objects["cert-manager-issuer"]
        self.assertEqual(given[("Certificate", f"{RELEASE}-imagegate-serving")]["spec"]["issuerRef"],
                         {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        self.assertEqual({k for k, _ in given if k in ("Issuer", "Certificate")}, {"Certificate"})

    def test_service_monitor(self):
        self.assertFalse([k for k, _ in self.objects["default"] if k == "ServiceMonitor"])
        objects = self.objects["service-monitor"]
        monitor = one(objects, "ServiceMonitor")
        service = one(objects, "Service")
        self.assertEqual(monitor["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(set(monitor), {"apiVersion", "kind", "metadata", "spec"})
        self.assertEqual(monitor["metadata"]["namespace"], NAMESPACE)
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        # It selects the Service by the Service's own labels, in the release namespace only.
        self.assertEqual(set(monitor["spec"]), {"selector", "namespaceSelector", "endpoints"})
        self.assertLessEqual(monitor["spec"]["selector"]["matchLabels"].items(),
                             service["metadata"]["labels"].items())
        self.assertEqual(monitor["spec"]["namespaceSelector"], {"matchNames": [NAMESPACE]})
        [endpoint] = monitor["spec"]["endpoints"]
        self.assertEqual(set(endpoint), {"port", "scheme", "path", "interval", "scrapeTimeout",
                                         "tlsConfig"})
        self.assertIn(endpoint["port"], [p["name"] for p in service["spec"]["ports"]])
        self.assertEqual((endpoint["scheme"], endpoint["path"]), ("https", "/metrics"))
        self.assertEqual((endpoint["interval"], endpoint["scrapeTimeout"]), ("15s", "10s"))
        # Verified against the CA of the chart's own TLS Secret, for the name on the certificate.
        tls = endpoint["tlsConfig"]
        self.assertEqual(set(tls), {"serverName", "ca"})
        self.assertEqual(tls["serverName"], SERVICE_HOST)
        secret = objects[("Secret", tls["ca"]["secret"]["name"])]
        self.assertIn(tls["ca"]["secret"]["key"], secret["data"])
        hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
        self.assertEqual(secret["data"]["ca.crt"], hook["clientConfig"]["caBundle"])
        # With cert-manager the Secret is the serving Certificate's (its CA issuer fills ca.crt).
        objects = self.objects["service-monitor-cert-manager"]
        tls = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"]
        serving = objects[("Certificate", f"{RELEASE}-imagegate-serving")]
        self.assertEqual(tls["ca"]["secret"]["name"], serving["spec"]["secretName"])
        self.assertIn(tls["serverName"], serving["spec"]["dnsNames"])
        tls = one(self.objects["service-monitor-insecure"], "ServiceMonitor")["spec"][
            "endpoints"][0]["tlsConfig"]
        self.assertEqual(tls, {"insecureSkipVerify": True})

    def policies_of(self, objects):
        return {name: yaml.safe_load(text) for name, text in
                objects[("ConfigMap", f"{RELEASE}-imagegate-policies")]["data"].items()}

    def test_default_policies_are_the_repositorys(self):
        repository = {}
        for path in sorted((ARGS.source_dir / "policies").glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                repository[doc["metadata"]["name"]] = doc
        rendered = {doc["metadata"]["name"]: doc for doc in self.policies_of(self.objects["default"]).values()}
        self.assertEqual(rendered, repository)

    def test_audit_mode_sets_every_action(self):
        enforce = self.policies_of(self.objects["default"])
        audit = self.policies_of(self.objects["audit"])
        self.assertEqual(set(audit), set(enforce))
        self.assertEqual({doc["spec"]["action"] for doc in audit.values()}, {"Audit"})
        for name in enforce:
            enforce[name]["spec"]["action"] = "Audit"
        self.assertEqual(audit, enforce)  # nothing else changed
        # A policy added in a values file is covered too, and one removed with null is gone.
        objects = render("--set", "mode=audit", *values_file({"policies": {"inline": {
            "team-rules": {"action": "Enforce", "rules": [{"name": "r", "readOnlyRootFilesystem": {}}]},
            "deprecated-registries": None}}}))
        policies = self.policies_of(objects)
        self.assertEqual(set(policies), set(enforce) - {"deprecated-registries.yaml"}
                         | {"team-rules.yaml"})
        self.assertEqual(policies["team-rules.yaml"]["spec"]["action"], "Audit")

    def test_rendered_policies_load_in_imagegate(self):
        for mode in ("default", "audit"):
            with self.subTest(mode):
                objects = self.objects[mode]
                directory = materialize(ARGS.scratch / f"policies-{mode}",
                                        objects[("ConfigMap", f"{RELEASE}-imagegate-policies")]["data"])
                result = run_imagegate("policy", "lint", str(directory))
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                shipped = len(list((ARGS.source_dir / "policies").glob("*.yaml")))
                self.assertIn(f"{shipped} policies OK", result.stdout + result.stderr)

    def test_existing_configmap(self):
        objects = self.objects["existing-configmap"]
        self.assertNotIn("ConfigMap", {k for k, n in objects if n.endswith("-policies")})
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "policies")
        self.assertEqual(volume["configMap"]["name"], "corp-policies")
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "policies")
        self.assertEqual(flags(objects)["policy"], mount["mountPath"])
        # mode: audit cannot rewrite a ConfigMap the chart does not render: refused, not ignored.
        result = helm("template", RELEASE, str(chart_dir()), "--set", "mode=audit",
                      "--set", "policies.existingConfigMap=corp-policies", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("cannot rewrite policies.existingConfigMap", result.stderr)
        # No policies at all is refused too (imagegate would not start).
        shipped = self.policies_of(self.objects["default"])
        result = helm("template", RELEASE, str(chart_dir()), *values_file({"policies": {"inline": {
            name.removesuffix(".yaml"): None for name in shipped}}}), check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("policies.inline is empty", result.stderr)

    def test_private_registry(self):
        objects = self.objects["private-registry"]
        secret = objects[("Secret", f"{RELEASE}-imagegate-registry-credentials")]
        self.assertEqual(secret["type"], "kubernetes.io/dockerconfigjson")
        config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
        self.assertEqual(config, {"auths": {
            "registry.corp.example:5000": {"auth": base64.b64encode(b"robot:s3cret").decode()},
            "ghcr.io": {"identitytoken": "token"}}})
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertEqual(pod["imagePullSecrets"], [{"name": "pull-imagegate"}])
        # The files imagegate is pointed at are the ones mounted, and the config loads: materialize
        # the mounts and run `imagegate review` (which loads the registry config before anything).
        root = ARGS.scratch / "private-registry-root"
        serve = mount_all(objects, root)
        registry_config = yaml.safe_load(pathlib.Path(serve["registry-config"]).read_text())
        self.assertEqual(registry_config["registries"][0]["host"], "registry.corp.example:5000")
        self.assertEqual(pathlib.Path(registry_config["registries"][0]["caFile"]).read_text().strip(),
                         test_ca_pem().strip())
        self.assertTrue(registry_config["registries"][1]["insecure"])
        self.assertEqual(json.loads(pathlib.Path(registry_config["dockerConfig"]).read_text()), config)
        review = run_imagegate("review", "--policy", serve["policy"], "--registry-config",
                               serve["registry-config"],
                               str(ARGS.source_dir / "tests/data/admission/pod-allow.json"))
        self.assertEqual(review.returncode, 0, review.stdout + review.stderr)
        # An existing Secret is mounted the same way, and nothing is rendered for it.
        objects = self.objects["existing-registry-secret"]
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "docker-config")
        self.assertEqual(volume["secret"]["secretName"], "corp-pull")
        self.assertNotIn("Secret", {k for k, n in objects if "registry" in n})
        # Without credentials nothing about them is rendered or mounted.
        self.assertNotIn("docker-config", {v["name"] for v in one(
            self.objects["default"], "Deployment")["spec"]["template"]["spec"]["volumes"]})

    def test_cache_modes(self):
        objects = self.objects["redis-cache"]
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        self.assertEqual(volumes["cache"]["emptyDir"], {"sizeLimit": "2Gi"})
        self.assertEqual(mounts["cache"]["mountPath"], "/var/cache/imagegate")
        self.assertFalse(mounts["cache"].get("readOnly", False))
        self.assertEqual(volumes["redis-password"]["secret"]["secretName"], "imagegate-redis")
        self.assertEqual(volumes["redis-password"]["secret"]["items"],
                         [{"key": "redis-password", "path": "password"}])
        self.assertTrue(mounts["redis-password"]["readOnly"])
        config = yaml.safe_load(objects[("ConfigMap", f"{RELEASE}-imagegate-registry")]
                                ["data"]["registries.yaml"])
        self.assertEqual(config["cache"], {
            "memory": "64Mi", "layerIndexMemory": "256Mi", "tagTtl": "30s",
            "dir": "/var/cache/imagegate", "dirBytes": "1536Mi",
            "redis": {"address": "redis.cache.svc:6379", "keyPrefix": "imagegate:",
                      "timeout": "150ms", "passwordFile": "/etc/imagegate/redis/password"}})
        # The rendered settings load in imagegate: the existing Secret is laid out as the kubelet
        # would, and `imagegate review` (which builds the caches before anything) runs with them.
        # Redis is not there: the review must still be answered from the local cache.
        root = ARGS.scratch / "redis-cache-root"
        materialize(root / "etc/imagegate/redis", {"password": "s3cret\n"})
        pod["volumes"] = [v for v in pod["volumes"] if v["name"] != "redis-password"]
        pod["containers"][0]["volumeMounts"] = [
            m for m in pod["containers"][0]["volumeMounts"] if m["name"] != "redis-password"]
        serve = mount_all(objects, root)
        review = run_imagegate("review", "--policy", serve["policy"], "--registry-config",
                               serve["registry-config"],
                               str(ARGS.source_dir / "tests/data/admission/pod-allow.json"))
        self.assertEqual(review.returncode, 0, review.stdout + review.stderr)
        self.assertTrue((root / "var/cache/imagegate").is_dir())
        # Without persistence nothing is mounted and the config names no directory.
        objects = self.objects["no-cache-persistence"]
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        self.assertNotIn("cache", {v["name"] for v in pod["volumes"]})
        config = yaml.safe_load(objects[("ConfigMap", f"{RELEASE}-imagegate-registry")]
                                ["data"]["registries.yaml"])
        self.assertNotIn("dir", config["cache"])
        self.assertNotIn("redis", config["cache"])
        # TLS to Redis is a value the schema does not know: hiredis 0.14 has none.
        failed = helm("template", RELEASE, str(chart_dir()), "--set", "cache.redis.tls=true",
                      check=False)
        self.assertNotEqual(failed.returncode, 0)

    def test_options(self):
        objects = self.objects["options"]
        pod_template = one(objects, "Deployment")["spec"]["template"]
        pod = pod_template["spec"]
        self.assertEqual(pod["priorityClassName"], "system-cluster-critical")
        self.assertEqual(pod["nodeSelector"], {"kubernetes.io/os": "linux"})
        self.assertEqual(pod["serviceAccountName"], "existing")
        self.assertNotIn("ServiceAccount", {k for k, _ in objects})
        self.assertEqual(pod_template["metadata"]["annotations"]["team"], "platform")
        self.assertEqual(pod_template["metadata"]["labels"]["tier"], "admission")
        self.assertEqual(pod["containers"][0]["image"],
                         "ghcr.io/imagegate/imagegate:0.1.0@sha256:" + "a" * 64)
        hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
        self.assertEqual(hook["objectSelector"]["matchExpressions"][0]["key"], "imagegate.dev/skip")

    def test_config_changes_roll_the_pods(self):
        def checksums(*args):
            return one(render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        base = checksums()
        self.assertNotEqual(base["checksum/policies"], checksums("--set", "mode=audit")["checksum/policies"])
        self.assertNotEqual(base["checksum/registry"],
                            checksums("--set", "registry.platform=linux/arm64")["checksum/registry"])

    def test_imagegate_admits_its_own_deployment(self):
        # The shipped policies, as rendered, evaluated on imagegate's own Deployment by the real
        # engine: imagegate passes its own rules (the release namespace is excluded by the webhook,
        # not by the policies, so this is a real evaluation).
        for mode in ("default", "options"):
            with self.subTest(mode):
                objects = self.objects[mode]
                deployment = one(objects, "Deployment")
                review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                    "uid": "0b6a1a4e-0000-4000-8000-000000000001",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                    "name": deployment["metadata"]["name"], "namespace": NAMESPACE,
                    "operation": "CREATE", "userInfo": {"username": "helm"},
                    "object": deployment, "dryRun": False}}
                path = ARGS.scratch / f"own-{mode}.json"
                path.write_text(json.dumps(review))
                policies = materialize(ARGS.scratch / f"own-policies-{mode}",
                                       self.objects["default"][("ConfigMap", f"{RELEASE}-imagegate-policies")]["data"])
                result = run_imagegate("review", "--policy", str(policies), str(path))
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                response = json.loads(result.stdout)["response"]
                self.assertTrue(response["allowed"])
                warnings = " ".join(response.get("warnings", []))
                if mode == "options":  # pinned by digest: not even an audit finding
                    self.assertEqual(warnings, "")
                else:
                    self.assertIn("pinned-by-digest", warnings)
                    self.assertNotIn("read-only-root-filesystem", warnings)

    def test_notes(self):
        copy_dir = ARGS.scratch / "chart-with-notes"
        if not copy_dir.exists():
            # helm template does not render NOTES.txt: render it through a ConfigMap wrapper.
            shutil.copytree(chart_dir(), copy_dir)
            shutil.copy(copy_dir / "templates/NOTES.txt", copy_dir / "notes-source.txt")
            (copy_dir / "templates/notes-wrapper.yaml").write_text(
                'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n'
                'data: {notes: {{ tpl (.Files.Get "notes-source.txt") . | quote }}}\n')
        notes = lambda *a: render("-s", "templates/notes-wrapper.yaml", *a, chart=copy_dir)[
            ("ConfigMap", "notes")]["data"]["notes"]
        audit = notes("--set", "mode=audit")
        self.assertIn("Mode: audit", audit)
        self.assertIn("--set mode=enforce", audit)
        enforce = notes()
        self.assertIn("production-baseline: Enforce", enforce)
        self.assertIn(f"except: {NAMESPACE}, kube-system", enforce)


class ServeRenderedChartTest(unittest.TestCase):
    """The real server with the chart's certificate, policies, registry settings and arguments,
    called as the API server calls a webhook."""

    def start(self, *values_args):
        objects = render("--set", "server.drainPeriodSeconds=1", "--set", "server.shutdownTimeoutSeconds=2",
                         *values_args)
        root = pathlib.Path(tempfile.mkdtemp(dir=ARGS.scratch))
        serve = mount_all(objects, root)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        serve["listen"] = f"127.0.0.1:{port}"
        process = subprocess.Popen([str(ARGS.imagegate), "serve",
                                    *[f"--{k}={v}" for k, v in serve.items()]],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(process.stdout.close)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        hook = one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]
        context = ssl.create_default_context(
            cadata=base64.b64decode(hook["clientConfig"]["caBundle"]).decode())
        deadline = time.monotonic() + 10
        while True:
            try:
                self.assertEqual(self.request(context, port, "GET", "/healthz")[0], 200)
                break
            except (ConnectionError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("imagegate serve did not start:\n" + process.stdout.read())
                time.sleep(0.05)
        return objects, process, context, port, hook

    def request(self, context, port, method, path, body=None):
        """One HTTPS request over a raw socket to 127.0.0.1 with the Service's DNS name as SNI and
        verified host name, as the API server resolves and verifies it."""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=SERVICE_HOST) as tls:
                headers = [f"{method} {path} HTTP/1.1", f"Host: {SERVICE_HOST}:443",
                           "Accept: application/json", "Connection: close"]
                if body is not None:
                    headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
                tls.sendall(("\r\n".join(headers) + "\r\n\r\n").encode() + (body or b""))
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        head, _, payload = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), payload

    def review(self, context, port, hook, fixture):
        body = (ARGS.source_dir / "tests/data/admission" / fixture).read_bytes()
        path = f"{hook['clientConfig']['service']['path']}?timeout={hook['timeoutSeconds']}s"
        status, payload = self.request(context, port, "POST", path, body)
        self.assertEqual(status, 200)
        response = json.loads(payload)["response"]
        self.assertEqual(response["uid"], json.loads(body)["request"]["uid"])
        return response

    def test_enforce(self):
        objects, process, context, port, hook = self.start()
        self.assertEqual(self.request(context, port, "GET", "/readyz")[0], 200)
        self.assertFalse(self.review(context, port, hook, "pod-deny.json")["allowed"])
        self.assertFalse(self.review(context, port, hook, "deployment-deny.json")["allowed"])
        self.assertTrue(self.review(context, port, hook, "pod-allow.json")["allowed"])
        # A client that trusts some other CA is refused: the caBundle is what makes it work.
        other = ssl.create_default_context(cafile=None)
        with self.assertRaises(ssl.SSLError):
            self.request(other, port, "GET", "/healthz")
        # SIGTERM: drains and exits well within the pod's grace period.
        grace = one(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # During the drain period the readiness probe fails (the kubelet takes the pod out of the
        # Service) while reviews are still answered.
        time.sleep(0.2)
        self.assertEqual(self.request(context, port, "GET", "/readyz")[0], 503)
        self.assertTrue(self.review(context, port, hook, "pod-allow.json")["allowed"])
        self.assertEqual(process.wait(timeout=grace), 0)
        self.assertLess(time.monotonic() - started, grace)

    def test_metrics_scraped_as_the_service_monitor_says(self):
        from prometheus_client.parser import text_string_to_metric_families
        objects, process, _, port, hook = self.start("--set", "metrics.serviceMonitor.enabled=true")
        endpoint = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]
        secret = objects[("Secret", endpoint["tlsConfig"]["ca"]["secret"]["name"])]
        ca = base64.b64decode(secret["data"][endpoint["tlsConfig"]["ca"]["secret"]["key"]])
        context = ssl.create_default_context(cadata=ca.decode())
        self.assertEqual(endpoint["tlsConfig"]["serverName"], SERVICE_HOST)  # request()'s name
        self.assertFalse(self.review(context, port, hook, "pod-deny.json")["allowed"])
        status, payload = self.request(context, port, "GET", endpoint["path"])
        self.assertEqual(status, 200)
        families = {f.name: f for f in text_string_to_metric_families(payload.decode())}
        denied = [s.value for s in families["imagegate_reviews"].samples
                  if s.name == "imagegate_reviews_total" and s.labels["verdict"] == "denied"]
        self.assertEqual(denied, [1.0])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    def test_audit_mode_allows_and_reports(self):
        _, process, context, port, hook = self.start("--set", "mode=audit")
        response = self.review(context, port, hook, "pod-deny.json")
        self.assertTrue(response["allowed"])
        self.assertTrue(response.get("warnings"))
        self.assertTrue(response.get("auditAnnotations"))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", type=pathlib.Path, required=True)
    parser.add_argument("--imagegate", type=pathlib.Path, required=True)
    parser.add_argument("--tools", type=pathlib.Path,
                        help="default: SOURCE_DIR/.cache/tools (scripts/install-helm.sh)")
    ARGS, rest = parser.parse_known_args()
    ARGS.source_dir = ARGS.source_dir.resolve()
    ARGS.tools = (ARGS.tools or ARGS.source_dir / ".cache" / "tools").resolve()
    ARGS.helm = ARGS.tools / "bin" / "helm"
    for needed in (ARGS.helm, ARGS.tools / "k8s-fields.json", ARGS.tools / "validator/node_modules",
                   ARGS.imagegate):
        if not needed.exists():
            print(f"chart_test: {needed} is missing; run scripts/install-deps.sh", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="imagegate-chart-") as scratch:
        ARGS.scratch = pathlib.Path(scratch)
        program = unittest.main(argv=[sys.argv[0], *rest], exit=False, verbosity=2)
        return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
