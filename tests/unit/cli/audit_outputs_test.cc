#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/audit.h"
#include "cli/audit_input.h"
#include "cli/commands.h"
#include "cli/policy_report.h"
#include "common/error.h"
#include "policy/loader.h"
#include "unit/cli/audit_test_policies.h"

// The outputs `imagegate audit` gained for tools (PolicyReport, SARIF) and its manifest inputs
// (directories, multi-document YAML), on made-up objects: no registry, no binary.
namespace imagegate::cli::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using fixtures::policies;

json container(const std::string& name, bool privileged, bool readOnlyRoot) {
  json securityContext = {{"runAsUser", 1000}, {"readOnlyRootFilesystem", readOnlyRoot}};
  if (privileged) securityContext["privileged"] = true;
  return {{"name", name}, {"image", "r/" + name + ":1"}, {"securityContext", securityContext}};
}

json deployment(const std::string& ns, const std::string& name, const std::string& uid,
                json containers) {
  json metadata = {{"name", name}};
  if (!ns.empty()) metadata["namespace"] = ns;
  if (!uid.empty()) metadata["uid"] = uid;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", metadata},
          {"spec", {{"template", {{"spec", {{"containers", std::move(containers)}}}}}}}};
}

json ownedPod(const std::string& ns, const std::string& name, const std::string& uid,
              const std::string& ownerName, const std::string& ownerUid, json containers) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"namespace", ns},
            {"name", name},
            {"uid", uid},
            {"ownerReferences",
             {{{"apiVersion", "apps/v1"},
               {"kind", "Deployment"},
               {"name", ownerName},
               {"uid", ownerUid},
               {"controller", true}}}}}},
          {"spec", {{"containers", std::move(containers)}}}};
}

/// prod: web (privileged app, writable log; its pod folded in) and ok (clean); staging: soft
/// (writable root only); one document that could not be read.
Report mixedReport() {
  Auditor auditor(policies());
  auditor.add(deployment("prod", "web", "d1",
                         {container("app", true, true), container("log", false, false)}),
              "manifests/web app.yaml", 1);
  auditor.add(ownedPod("prod", "web-a", "p1", "web", "d1",
                       {container("app", true, true), container("log", false, false)}),
              "cluster.json");
  auditor.add(deployment("prod", "ok", "d2", {container("app", false, true)}), "cluster.json");
  auditor.add(deployment("staging", "soft", "", {container("app", false, false)}),
              "manifests/soft.yaml", 2);
  auditor.addUnreadable("manifests/broken.yaml", 3, "not YAML: line 7, column 3: bad");
  return auditor.evaluate({});
}

const json* resultFor(const json& report, const std::string& resourceName,
                      const std::string& rule) {
  for (const json& result : report["results"]) {
    if (result["rule"] == rule && result.contains("resources") &&
        result["resources"][0]["name"] == resourceName) {
      return &result;
    }
  }
  return nullptr;
}

TEST(AuditPolicyReport, OneReportPerNamespaceAndAClusterOneForTheRest) {
  const json list = renderPolicyReports(
      mixedReport(), std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["kind"], "List");
  ASSERT_EQ(list["items"].size(), 3u) << list.dump(1);
  std::vector<std::string> names;
  for (const json& item : list["items"]) {
    EXPECT_EQ(item["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    EXPECT_EQ(item["metadata"]["labels"]["app.kubernetes.io/managed-by"], "imagegate");
    names.push_back(item["kind"].get<std::string>() + "/" +
                    item["metadata"].value("namespace", "") + "/" +
                    item["metadata"]["name"].get<std::string>());
  }
  EXPECT_THAT(names, ElementsAre("PolicyReport/prod/imagegate-prod",
                                 "PolicyReport/staging/imagegate-staging",
                                 "ClusterPolicyReport//imagegate-cluster"));
}

TEST(AuditPolicyReport, ResultsMapEnforceToFailAuditToWarnAndCleanRulesToPass) {
  const json list = renderPolicyReports(
      mixedReport(), std::chrono::system_clock::time_point(std::chrono::milliseconds(1500)));
  const json& prod = list["items"][0];

  const json* privileged = resultFor(prod, "web", "no-privileged");
  ASSERT_NE(privileged, nullptr) << prod.dump(1);
  EXPECT_EQ((*privileged)["policy"], "baseline");
  EXPECT_EQ((*privileged)["result"], "fail");
  EXPECT_EQ((*privileged)["severity"], "high");
  EXPECT_EQ((*privileged)["source"], "imagegate");
  EXPECT_THAT((*privileged)["message"].get<std::string>(),
              HasSubstr("container \"app\": runs privileged"));
  EXPECT_THAT((*privileged)["message"].get<std::string>(), HasSubstr(" Fix: "));
  EXPECT_EQ((*privileged)["timestamp"], json({{"seconds", 1}, {"nanos", 500000000}}));
  EXPECT_EQ((*privileged)["properties"]["containers"], "app");
  EXPECT_EQ((*privileged)["properties"]["images"], "r/app:1");
  EXPECT_EQ((*privileged)["properties"]["action"], "Enforce");
  // The pod folded into its Deployment is a resource of the same result.
  EXPECT_EQ((*privileged)["resources"],
            json::parse(R"([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                              "namespace": "prod", "uid": "d1"},
                             {"apiVersion": "v1", "kind": "Pod", "name": "web-a",
                              "namespace": "prod", "uid": "p1"}])"));

  const json* readOnly = resultFor(prod, "web", "read-only-root");
  ASSERT_NE(readOnly, nullptr);
  EXPECT_EQ((*readOnly)["result"], "warn");
  EXPECT_EQ((*readOnly)["severity"], "low");
  const json* nonRoot = resultFor(prod, "web", "non-root");
  ASSERT_NE(nonRoot, nullptr);
  EXPECT_EQ((*nonRoot)["result"], "pass");

  // Summary: web fail + pass + warn; ok pass x3.
  EXPECT_EQ(prod["summary"],
            json({{"pass", 4}, {"fail", 1}, {"warn", 1}, {"error", 0}, {"skip", 0}}));
  // No uid (a manifest): none in the reference.
  const json& staging = list["items"][1];
  EXPECT_FALSE(staging["results"][0]["resources"][0].contains("uid"));
  EXPECT_EQ(staging["results"][0]["properties"]["source"], "manifests/soft.yaml");
  EXPECT_EQ(staging["results"][0]["properties"]["document"], "2");
}

TEST(AuditPolicyReport, UnreadableDocumentsAreErrorsNamingTheirFileAndDocument) {
  const json list = renderPolicyReports(mixedReport(), std::chrono::system_clock::now());
  const json& cluster = list["items"][2];
  ASSERT_EQ(cluster["results"].size(), 1u);
  const json& result = cluster["results"][0];
  EXPECT_EQ(result["result"], "error");
  EXPECT_EQ(result["policy"], "imagegate-input");
  EXPECT_FALSE(result.contains("resources"));
  EXPECT_THAT(result["message"].get<std::string>(), HasSubstr("line 7, column 3: bad"));
  EXPECT_EQ(result["properties"]["source"], "manifests/broken.yaml");
  EXPECT_EQ(result["properties"]["document"], "3");
  EXPECT_EQ(cluster["summary"]["error"], 1);
}

TEST(AuditSarif, WorkloadsAreLogicalLocationsAndTheirFilesPhysicalOnes) {
  const Report report = mixedReport();
  const json log = renderSarif(report, SarifTool{"imagegate", "1.0", "https://imagegate.dev/"},
                               policies().get());
  const json& run = log["runs"][0];
  std::vector<std::string> ruleIds;
  for (const json& rule : run["tool"]["driver"]["rules"]) ruleIds.push_back(rule["id"]);
  EXPECT_THAT(ruleIds, ElementsAre("baseline/no-privileged", "baseline/non-root",
                                   "hardening/read-only-root"));
  const json* privileged = nullptr;
  for (const json& result : run["results"]) {
    if (result["ruleId"] == "baseline/no-privileged") privileged = &result;
  }
  ASSERT_NE(privileged, nullptr) << run.dump(1);
  EXPECT_EQ((*privileged)["level"], "error");
  const json& location = (*privileged)["locations"][0];
  EXPECT_EQ(location["logicalLocations"][0]["fullyQualifiedName"], "prod/Deployment/web");
  EXPECT_EQ(location["physicalLocation"]["artifactLocation"]["uri"], "manifests/web%20app.yaml");
  EXPECT_EQ((*privileged)["properties"]["workload"], "prod/Deployment/web");
  EXPECT_EQ((*privileged)["properties"]["container"], "app");
  EXPECT_EQ((*privileged)["properties"]["containerImage"], "r/app:1");
  EXPECT_EQ((*privileged)["properties"]["reportedHere"], "Pod/web-a");
  // Failing rules only: one privileged, two writable roots.
  EXPECT_EQ(run["results"].size(), 3u);
  const json& invocation = run["invocations"][0];
  EXPECT_FALSE(invocation["executionSuccessful"]);
  EXPECT_THAT(invocation["toolExecutionNotifications"][0]["message"]["text"].get<std::string>(),
              HasSubstr("manifests/broken.yaml document 3: could not be evaluated"));
}

class AuditDirectoryInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("imagegate-audit-input-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "apps/nested");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const fs::path& relative, const std::string& text) {
    std::ofstream(dir_ / relative) << text;
  }

  fs::path dir_;
};

TEST_F(AuditDirectoryInput, ManifestFilesAreSortedAndFilteredByExtension) {
  write("b.yaml", "");
  write("a.json", "");
  write("apps/nested/c.yml", "");
  write("notes.txt", "");
  write("apps/README.md", "");
  const auto files = manifestFiles(dir_.string());
  std::vector<std::string> relative;
  for (const fs::path& file : files) relative.push_back(fs::relative(file, dir_).string());
  EXPECT_THAT(relative, ElementsAre("a.json", "apps/nested/c.yml", "b.yaml"));
  EXPECT_THROW(manifestFiles((dir_ / "missing").string()), Error);
  fs::create_directories(dir_ / "empty");
  EXPECT_THROW(manifestFiles((dir_ / "empty").string()), Error);
}

TEST_F(AuditDirectoryInput, MultiDocumentYamlWithAMalformedDocument) {
  write("apps/web.yaml", deployment("prod", "web", "", {container("app", true, true)}).dump() +
                             "\n---\n# nothing here\n---\nkind: [broken\n---\n" +
                             deployment("prod", "ok", "", {container("app", false, true)}).dump() +
                             "\n");
  write("apps/nested/list.json",
        json({{"apiVersion", "v1"},
              {"kind", "List"},
              {"items", {deployment("", "unnamespaced", "", {container("app", false, true)})}}})
            .dump());
  Auditor auditor(policies());
  std::istringstream noInput;
  readInputs({dir_.string()}, 1 << 20, auditor, noInput);
  const Report report = auditor.evaluate({});
  ASSERT_EQ(report.workloads.size(), 4u);
  EXPECT_EQ(report.workloads[0].label(), "Deployment/unnamespaced");
  EXPECT_EQ(report.workloads[1].label(), "prod/Deployment/web");
  EXPECT_EQ(report.workloads[1].document, 1u);
  EXPECT_EQ(report.workloads[2].label(), (dir_ / "apps/web.yaml").string() + " document 3");
  EXPECT_THAT(report.workloads[2].problem, HasSubstr("not YAML: line "));
  EXPECT_EQ(report.workloads[3].label(), "prod/Deployment/ok");
  EXPECT_EQ(report.workloads[3].document, 4u);
  EXPECT_EQ(report.unreadable(), 1u);
  EXPECT_EQ(report.count(Verdict::kDeny), 1u);
  EXPECT_EQ(exitCode(report), kExitViolations);
}

TEST_F(AuditDirectoryInput, ByteLimitIsPerFileAndForAllTogether) {
  const std::string doc = deployment("prod", "web", "", {container("app", false, true)}).dump();
  write("a.json", doc);
  write("b.json", doc);
  std::istringstream noInput;
  {
    Auditor auditor(policies());
    EXPECT_NO_THROW(readInputs({dir_.string()}, 2 * doc.size(), auditor, noInput));
  }
  Auditor auditor(policies());
  try {
    readInputs({dir_.string()}, 2 * doc.size() - 1, auditor, noInput);
    FAIL() << "total not bounded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("b.json is larger than"));
  }
}

TEST(AuditStdinInput, YamlAndJsonAreToldApartByTheirFirstCharacter) {
  Auditor auditor(policies());
  std::istringstream yaml(
      "kind: Deployment\napiVersion: apps/v1\nmetadata: {name: y}\n"
      "spec: {template: {spec: {containers: [{name: a, image: r/a:1}]}}}\n");
  readInputs({"-"}, 1 << 20, auditor, yaml);
  std::istringstream notAnObject("[1, 2]");
  readInputs({"-"}, 1 << 20, auditor, notAnObject);
  const Report report = auditor.evaluate({});
  ASSERT_EQ(report.workloads.size(), 2u);
  EXPECT_EQ(report.workloads[0].label(), "Deployment/y");
  EXPECT_EQ(report.workloads[1].label(), "stdin");
  EXPECT_THAT(report.workloads[1].problem, HasSubstr("expected a Kubernetes object"));
}

}  // namespace
}  // namespace imagegate::cli::audit
