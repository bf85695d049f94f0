#include "cli/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "image/image_ref.h"
#include "policy/loader.h"
#include "unit/cli/audit_test_policies.h"

namespace imagegate::cli::audit {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using fixtures::policies;

/// A container that passes every rule above without image facts.
json goodContainer(const std::string& name, const std::string& image) {
  return {{"name", name},
          {"image", image},
          {"securityContext", {{"runAsUser", 1000}, {"readOnlyRootFilesystem", true}}}};
}

json podSpec(json containers) { return {{"containers", std::move(containers)}}; }

json metadata(const std::string& ns, const std::string& name, const std::string& uid,
              json owners = json()) {
  json m = {{"namespace", ns}, {"name", name}, {"uid", uid}};
  if (!owners.is_null()) m["ownerReferences"] = std::move(owners);
  return m;
}

json ownerRef(const std::string& kind, const std::string& name, const std::string& uid) {
  return json::array({{{"apiVersion", "apps/v1"},
                       {"kind", kind},
                       {"name", name},
                       {"uid", uid},
                       {"controller", true}}});
}

json deployment(const std::string& ns, const std::string& name, const std::string& uid,
                json containers) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", metadata(ns, name, uid)},
          {"spec", {{"template", {{"spec", podSpec(std::move(containers))}}}}}};
}

json replicaSet(const std::string& ns, const std::string& name, const std::string& uid, json owners,
                json containers) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", metadata(ns, name, uid, std::move(owners))},
          {"spec", {{"template", {{"spec", podSpec(std::move(containers))}}}}}};
}

json pod(const std::string& ns, const std::string& name, const std::string& uid, json owners,
         json containers) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", metadata(ns, name, uid, std::move(owners))},
          {"spec", podSpec(std::move(containers))}};
}

json privileged(json container) {
  container["securityContext"]["privileged"] = true;
  return container;
}

json writableRoot(json container) {
  container["securityContext"]["readOnlyRootFilesystem"] = false;
  return container;
}

Report auditOf(const std::vector<json>& objects, const policy::ImageFactsMap& facts = {}) {
  Auditor auditor(policies());
  for (const json& object : objects) auditor.add(object, "test.json");
  return auditor.evaluate(facts);
}

const WorkloadReport* find(const Report& report, const std::string& label) {
  for (const WorkloadReport& w : report.workloads) {
    if (w.label() == label) return &w;
  }
  return nullptr;
}

TEST(AuditInput, ListItemsAndASingleObject) {
  const json list = {{"apiVersion", "v1"},
                     {"kind", "List"},
                     {"items", {pod("a", "p", "1", json(), {goodContainer("c", "r/i:1")})}}};
  EXPECT_EQ(objectsOf(parseInput(list.dump(), "list.json"), "list.json").size(), 1u);
  const json single = deployment("a", "d", "2", {goodContainer("c", "r/i:1")});
  const auto objects = objectsOf(parseInput(single.dump(), "one.json"), "one.json");
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0]["kind"], "Deployment");
}

TEST(AuditInput, TypedListItemsGetTheirKind) {
  // `kubectl get pods -o json` against some servers prints a PodList whose items carry no kind.
  json item = pod("a", "p", "1", json(), {goodContainer("c", "r/i:1")});
  item.erase("kind");
  item.erase("apiVersion");
  const json list = {{"apiVersion", "v1"}, {"kind", "PodList"}, {"items", {item}}};
  const auto objects = objectsOf(parseInput(list.dump(), "pods.json"), "pods.json");
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0]["kind"], "Pod");
  EXPECT_EQ(objects[0]["apiVersion"], "v1");
}

TEST(AuditInput, ManagedFieldsAreDroppedWhileParsing) {
  json object = pod("a", "p", "1", json(), {goodContainer("c", "r/i:1")});
  object["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  const json list = {{"kind", "List"}, {"items", {object}}};
  const auto objects = objectsOf(parseInput(list.dump(), "list.json"), "list.json");
  EXPECT_FALSE(objects.at(0)["metadata"].contains("managedFields"));
  EXPECT_EQ(objects.at(0)["metadata"]["name"], "p");
}

TEST(AuditInput, UnusableInputNamesTheSource) {
  try {
    parseInput("{\"kind\": ", "cluster.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cluster.json is not JSON"));
  }
  EXPECT_THROW(objectsOf(json::array(), "x.json"), Error);
  EXPECT_THROW(objectsOf(json{{"kind", "List"}, {"items", 3}}, "x.json"), Error);
  EXPECT_THROW(objectsOf(json{{"metadata", json::object()}}, "x.json"), Error);
  EXPECT_THROW(parseInput(std::string(100, '[') + std::string(100, ']'), "deep.json"), Error);
}

TEST(Audit, FindingsPerWorkloadPolicyAndRuleWithFixes) {
  const Report report = auditOf({deployment("prod", "web", "d1",
                                            {privileged(goodContainer("app", "r/app:1")),
                                             writableRoot(goodContainer("log", "r/log:1"))})});
  ASSERT_EQ(report.workloads.size(), 1u);
  const WorkloadReport& web = report.workloads[0];
  EXPECT_EQ(web.label(), "prod/Deployment/web");
  EXPECT_EQ(web.verdict(), Verdict::kDeny);
  ASSERT_EQ(web.findings.size(), 2u);
  EXPECT_EQ(web.findings[0].policy, "baseline");
  EXPECT_EQ(web.findings[0].rule, "no-privileged");
  EXPECT_EQ(web.findings[0].verdict, Verdict::kDeny);
  EXPECT_EQ(web.findings[0].container, "app");
  EXPECT_EQ(web.findings[0].image, "r/app:1");
  EXPECT_FALSE(web.findings[0].remediation.empty());
  EXPECT_EQ(web.findings[1].rule, "read-only-root");
  EXPECT_EQ(web.findings[1].verdict, Verdict::kWarn);
  EXPECT_EQ(web.findings[1].container, "log");
  EXPECT_EQ(exitCode(report), kExitViolations);
}

TEST(Audit, WarningsOnlyAndCleanExitZero) {
  const Report report =
      auditOf({deployment("prod", "ok", "d1", {goodContainer("app", "r/app:1")}),
               deployment("prod", "soft", "d2", {writableRoot(goodContainer("app", "r/app:1"))})});
  EXPECT_EQ(report.count(Verdict::kClean), 1u);
  EXPECT_EQ(report.count(Verdict::kWarn), 1u);
  EXPECT_EQ(report.count(Verdict::kDeny), 0u);
  EXPECT_EQ(exitCode(report), kExitOk);
}

TEST(Audit, OwnedObjectsAreReportedOnceThroughTheTopOwner) {
  const json bad = {privileged(goodContainer("app", "r/app:1"))};
  const Report report = auditOf({
      deployment("prod", "web", "d1", bad),
      replicaSet("prod", "web-5d8f", "rs1", ownerRef("Deployment", "web", "d1"), bad),
      pod("prod", "web-5d8f-a", "p1", ownerRef("ReplicaSet", "web-5d8f", "rs1"), bad),
      pod("prod", "web-5d8f-b", "p2", ownerRef("ReplicaSet", "web-5d8f", "rs1"), bad),
  });
  ASSERT_EQ(report.workloads.size(), 1u);
  EXPECT_EQ(report.reportedThroughOwner, 3u);
  EXPECT_THAT(report.workloads[0].reportedHere,
              ElementsAre("ReplicaSet/web-5d8f", "Pod/web-5d8f-a", "Pod/web-5d8f-b"));
  ASSERT_EQ(report.byRule.size(), 1u);
  EXPECT_EQ(report.byRule[0].denied, 1u);  // one workload, not four
}

TEST(Audit, AnOwnedPodWithItsOwnProblemsShowsOnlyThose) {
  // A sidecar injected into the pod (not in the template) runs privileged.
  const Report report = auditOf({
      deployment("prod", "web", "d1", {writableRoot(goodContainer("app", "r/app:1"))}),
      replicaSet("prod", "web-1", "rs1", ownerRef("Deployment", "web", "d1"),
                 {writableRoot(goodContainer("app", "r/app:1"))}),
      pod("prod", "web-1-a", "p1", ownerRef("ReplicaSet", "web-1", "rs1"),
          {writableRoot(goodContainer("app", "r/app:1")),
           privileged(goodContainer("proxy", "r/proxy:2"))}),
  });
  ASSERT_EQ(report.workloads.size(), 2u);
  const WorkloadReport* pod = find(report, "prod/Pod/web-1-a");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->owner, "Deployment/web");
  ASSERT_EQ(pod->findings.size(), 1u);
  EXPECT_EQ(pod->findings[0].container, "proxy");
  EXPECT_EQ(pod->findings[0].rule, "no-privileged");
}

TEST(Audit, OwnerOutsideTheInputLeavesThePodOnItsOwn) {
  const Report report = auditOf({pod("prod", "job-x", "p1", ownerRef("Job", "gone", "j0"),
                                     {privileged(goodContainer("app", "r/app:1"))})});
  ASSERT_EQ(report.workloads.size(), 1u);
  EXPECT_EQ(report.workloads[0].owner, "");
  EXPECT_EQ(report.reportedThroughOwner, 0u);
}

TEST(Audit, OwnersMatchByNameWhenTheInputHasNoUids) {
  json owners = ownerRef("Deployment", "web", "");
  owners[0].erase("uid");
  json rs = replicaSet("prod", "web-1", "", owners, {goodContainer("app", "r/app:1")});
  rs["metadata"].erase("uid");
  json d = deployment("prod", "web", "", {goodContainer("app", "r/app:1")});
  d["metadata"].erase("uid");
  const Report report = auditOf({d, rs});
  EXPECT_EQ(report.reportedThroughOwner, 1u);
  ASSERT_EQ(report.workloads.size(), 1u);
  EXPECT_EQ(report.workloads[0].kind, "Deployment");
}

TEST(Audit, NonWorkloadsAreSkippedAndMalformedObjectsReported) {
  const json service = {
      {"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", metadata("prod", "web", "s1")}};
  json broken = pod("prod", "broken", "p9", json(), {goodContainer("app", "r/app:1")});
  broken["spec"]["containers"][0]["image"] = 42;
  const Report report = auditOf({service, broken});
  EXPECT_EQ(report.skipped.at("Service"), 1u);
  ASSERT_EQ(report.workloads.size(), 1u);
  EXPECT_THAT(report.workloads[0].problem, HasSubstr("spec.containers[0].image"));
  EXPECT_EQ(report.unreadable(), 1u);
  EXPECT_EQ(exitCode(report), kExitUsage);
  EXPECT_THAT(renderTable(report), HasSubstr("ERROR prod/Pod/broken: could not be evaluated"));
}

TEST(Audit, ImagesAreAskedForOnceAndMissingFactsAreListed) {
  // No runAsUser: runAsNonRoot needs each image's config.
  const json rootless = {{"name", "app"},
                         {"image", "registry.example/app:1"},
                         {"securityContext", {{"readOnlyRootFilesystem", true}}}};
  Auditor auditor(policies());
  auditor.add(deployment("a", "one", "1", {rootless}), "x");
  auditor.add(deployment("b", "two", "2", {rootless}), "x");
  const policy::ReviewPlan wanted = auditor.imagesToFetch();
  ASSERT_EQ(wanted.images.size(), 1u);
  EXPECT_TRUE(wanted.images.begin()->second.config);

  policy::ImageFactsMap facts;
  facts[wanted.images.begin()->first].error = "registry.example: connection refused";
  const Report report = auditor.evaluate(facts);
  ASSERT_EQ(report.imagesNotFetched.size(), 1u);
  EXPECT_EQ(report.imagesNotFetched[0].image, "registry.example/app:1");
  EXPECT_EQ(report.imagesNotFetched[0].error, "registry.example: connection refused");
  // onFetchError defaults to Deny: the Enforce rule fails, naming the registry error.
  EXPECT_EQ(report.count(Verdict::kDeny), 2u);
  EXPECT_THAT(report.workloads[0].findings.at(0).message, HasSubstr("connection refused"));
  EXPECT_EQ(exitCode(report), kExitViolations);
}

TEST(Audit, JsonSchema) {
  const Report report = auditOf({
      deployment("prod", "web", "d1", {privileged(goodContainer("app", "r/app:1"))}),
      pod("prod", "web-a", "p1", ownerRef("Deployment", "web", "d1"),
          {privileged(goodContainer("app", "r/app:1"))}),
      deployment("prod", "ok", "d2", {goodContainer("app", "r/app:1")}),
  });
  const json out = renderJson(report);
  EXPECT_EQ(out["apiVersion"], "imagegate.dev/v1alpha1");
  EXPECT_EQ(out["kind"], "AuditReport");
  const json& summary = out["summary"];
  EXPECT_EQ(summary["objects"], 3);
  EXPECT_EQ(summary["workloads"], 2);
  EXPECT_EQ(summary["reportedThroughOwner"], 1);
  EXPECT_EQ(summary["clean"], 1);
  EXPECT_EQ(summary["withDenials"], 1);
  EXPECT_EQ(summary["withWarningsOnly"], 0);
  EXPECT_EQ(summary["byRule"],
            json::parse(R"([{"policy":"baseline","rule":"no-privileged","action":"Enforce",
                             "denied":1,"warned":0}])"));
  const json& web = out["workloads"][0];
  EXPECT_EQ(web["namespace"], "prod");
  EXPECT_EQ(web["kind"], "Deployment");
  EXPECT_EQ(web["verdict"], "deny");
  EXPECT_EQ(web["reportedHere"], json::array({"Pod/web-a"}));
  const json& finding = web["findings"][0];
  for (const char* key : {"policy", "rule", "action", "result", "container", "containerKind",
                          "image", "message", "remediation"}) {
    EXPECT_TRUE(finding.contains(key)) << key;
  }
  EXPECT_EQ(finding["result"], "deny");
  EXPECT_EQ(out["workloads"][1]["verdict"], "clean");
}

TEST(Audit, TableShowsFindingsFixesAndTheSummary) {
  const Report report = auditOf({
      deployment("prod", "web", "d1", {privileged(goodContainer("app", "r/app:1"))}),
      pod("prod", "web-a", "p1", ownerRef("Deployment", "web", "d1"),
          {privileged(goodContainer("app", "r/app:1"))}),
      deployment("prod", "ok", "d2", {goodContainer("app", "r/app:1")}),
  });
  const std::string table = renderTable(report);
  EXPECT_THAT(table, HasSubstr("DENY  prod/Deployment/web  (reported here for its 1 owned "
                               "object: Pod/web-a)\n"));
  EXPECT_THAT(table, HasSubstr("  deny  baseline/no-privileged  container \"app\" (r/app:1)\n"));
  EXPECT_THAT(table, HasSubstr("        fix: "));
  EXPECT_THAT(table, Not(HasSubstr("prod/Deployment/ok")));  // clean: in the summary only
  EXPECT_THAT(table, HasSubstr("Summary: 3 objects read, 2 workloads reported (1 more objects "
                               "reported through their owners, not twice): 1 clean, 1 with "
                               "denials, 0 with warnings only\n"));
  EXPECT_THAT(table, HasSubstr("baseline/no-privileged  Enforce       1       0\n"));
}

}  // namespace
}  // namespace imagegate::cli::audit
