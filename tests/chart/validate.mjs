// Validates every object of a multi-document YAML file (what `helm template` prints) against the
// Kubernetes OpenAPI schemas offline, with kubernetes-models (types, enums, required fields) and
// @kubernetes-models/cert-manager for cert-manager's Certificate and Issuer. An object of a kind
// neither knows fails: the chart must render nothing that cannot be checked.
// Unknown fields are not caught here (the models allow additional properties); chart_test.py
// checks them against the API's field tables.
// usage: node validate.mjs RENDERED.yaml   (run from a directory whose node_modules has both)
import fs from "node:fs";
import YAML from "yaml";

let failed = 0;
let count = 0;
for (const doc of YAML.parseAllDocuments(fs.readFileSync(process.argv[2], "utf8"))) {
  if (doc.errors.length) {
    console.log(`FAIL yaml: ${doc.errors[0].message}`);
    failed++;
    continue;
  }
  const obj = doc.toJSON();
  if (!obj) continue;
  count++;
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : [null, obj.apiVersion];
  const module = group === "cert-manager.io"
    ? `@kubernetes-models/cert-manager/${group}/${version}`
    : group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  let Model;
  try {
    Model = (await import(module))[obj.kind];
  } catch {
    Model = undefined;
  }
  const name = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  if (!Model) {
    console.log(`FAIL ${name}: no schema for this kind`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message.split("\n").slice(0, 5).join(" | ")}`);
  }
}
console.log(`${count - failed} valid, ${failed} invalid`);
process.exit(failed || count === 0 ? 1 : 0);
