// Validates what `imagegate audit --output policyreport` prints (a v1 List of
// wgpolicyk8s.io/v1alpha2 PolicyReports and ClusterPolicyReports) with the npm package
// @kubernetes-models/kyverno (scripts/install-policyreport-schema.sh):
//   - each item with the package's validator for its kind, generated from Kyverno's policyreport
//     API: types, enums (result, severity), required fields, integer formats;
//   - unknown fields, which the API server rejects under strict field validation (kubectl's
//     default) but those validators let through: every field must be one the package's
//     TypeScript interfaces declare for that object.
// usage: node validate_policy_report.mjs NODE_MODULES_DIR REPORT.json
// Prints one line per problem and exits 1 when there is any, 0 otherwise.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, reportPath] = process.argv.slice(2);
const kyverno = join(modules, "@kubernetes-models/kyverno/wgpolicyk8s.io/v1alpha2");

/// Field names of `export interface <name>` in a .d.ts file: the top level ones, and for fields
/// whose type is an inline object ("timestamp"?: { ... }), theirs as "timestamp.nanos".
function interfaceFields(file, name) {
  const lines = readFileSync(file, "utf8").split("\n");
  const start = lines.findIndex((line) => line.startsWith(`export interface ${name} `));
  if (start < 0) throw new Error(`no interface ${name} in ${file}`);
  const fields = new Set();
  let parent = null;
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("}")) break;
    const field = line.match(/^( +)"([^"]+)"\??:/);
    if (!field) {
      if (/^ {4}\};?$/.test(line)) parent = null;
      continue;
    }
    if (field[1].length === 4) {
      fields.add(field[2]);
      parent = line.trimEnd().endsWith("{") ? field[2] : null;
    } else if (field[1].length === 8 && parent) {
      fields.add(`${parent}.${field[2]}`);
    }
  }
  return fields;
}

const fieldsOf = {
  PolicyReport: interfaceFields(join(kyverno, "PolicyReport.d.ts"), "IPolicyReport"),
  ClusterPolicyReport: interfaceFields(join(kyverno, "ClusterPolicyReport.d.ts"),
                                       "IClusterPolicyReport"),
  result: interfaceFields(join(kyverno, "PolicyReportResult.d.ts"), "IPolicyReportResult"),
  summary: interfaceFields(join(kyverno, "PolicyReportSummary.d.ts"), "IPolicyReportSummary"),
  objectReference: interfaceFields(join(modules, "kubernetes-models/v1/ObjectReference.d.ts"),
                                   "IObjectReference"),
  objectMeta: interfaceFields(
      join(modules, "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta.d.ts"), "IObjectMeta"),
  // kubectl's List: https://kubernetes.io/docs/reference/using-api/api-concepts/#collections
  List: new Set(["apiVersion", "kind", "metadata", "items"]),
};

const problems = [];

function unknownFields(object, fields, path, prefix = "") {
  if (object === null || typeof object !== "object" || Array.isArray(object)) return;
  for (const key of Object.keys(object)) {
    if (!fields.has(prefix + key)) problems.push(`${path}/${key}: unknown field`);
    const nested = [...fields].some((field) => field.startsWith(`${prefix}${key}.`));
    if (nested) unknownFields(object[key], fields, `${path}/${key}`, `${prefix}${key}.`);
  }
}

const list = JSON.parse(readFileSync(reportPath, "utf8"));
unknownFields(list, fieldsOf.List, "");
if (list.apiVersion !== "v1" || list.kind !== "List" || !Array.isArray(list.items)) {
  problems.push("not a v1 List with items");
}
for (const [index, item] of (list.items ?? []).entries()) {
  const path = `/items/${index}`;
  const kind = item.kind;
  if (kind !== "PolicyReport" && kind !== "ClusterPolicyReport") {
    problems.push(`${path}/kind: ${kind} is neither PolicyReport nor ClusterPolicyReport`);
    continue;
  }
  const model = await import(pathToFileURL(join(kyverno, `${kind}.js`)).href);
  try {
    new model[kind](item).validate();
  } catch (error) {
    problems.push(`${path}: ${error.message}`);
  }
  unknownFields(item, fieldsOf[kind], path);
  unknownFields(item.metadata, fieldsOf.objectMeta, `${path}/metadata`);
  unknownFields(item.summary, fieldsOf.summary, `${path}/summary`);
  for (const [r, result] of (item.results ?? []).entries()) {
    unknownFields(result, fieldsOf.result, `${path}/results/${r}`);
    for (const [o, resource] of (result.resources ?? []).entries()) {
      unknownFields(resource, fieldsOf.objectReference, `${path}/results/${r}/resources/${o}`);
    }
  }
}
for (const problem of problems) console.log(problem);
process.exit(problems.length === 0 ? 0 : 1);
