#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "testutil/shell.h"

// `imagegate audit`, the real binary on what `kubectl get ... -A -o json` prints: a List mixing
// every workload kind, owned pods, a non-workload and objects the policies pass, deny and warn
// (tests/data/audit). These policies need no image facts, so no registry is involved; the
// registry case is in image_facts_integration_test.cc (AuditCommand).
namespace imagegate {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::shellQuote;

const fs::path kData = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/audit";

struct AuditRun {
  int exitCode = -1;
  std::string out;
  std::string err;
};

class AuditCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("imagegate-audit-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// `imagegate audit --policy tests/data/audit/policies.yaml ARGS`, stdin from `input`.
  AuditRun audit(const std::string& args, const fs::path& input = "/dev/null") {
    const fs::path err = dir_ / "stderr";
    const testutil::CommandResult result =
        testutil::runCommand(shellQuote(IMAGEGATE_BINARY) + " audit --policy " +
                             shellQuote((kData / "policies.yaml").string()) + " " + args + " <" +
                             shellQuote(input.string()) + " 2>" + shellQuote(err.string()));
    return {result.exitCode, result.output, testutil::readFile(err)};
  }

  static std::string cluster() { return shellQuote((kData / "cluster-list.json").string()); }

  fs::path dir_;
};

const json* workload(const json& report, const std::string& ns, const std::string& kind,
                     const std::string& name) {
  for (const json& w : report["workloads"]) {
    if (w["namespace"] == ns && w["kind"] == kind && w["name"] == name) return &w;
  }
  return nullptr;
}

TEST_F(AuditCommandTest, TableOfAMixedClusterList) {
  const AuditRun run = audit(cluster());
  EXPECT_EQ(run.exitCode, 1) << run.out << run.err;
  EXPECT_EQ(run.err, "");
  const std::string& out = run.out;
  // The Deployment, once, with its ReplicaSet and pods folded in.
  EXPECT_THAT(out, HasSubstr("DENY  shop/Deployment/web  (reported here for its 2 owned objects: "
                             "ReplicaSet/web-7c9d, Pod/web-7c9d-abcde)\n"
                             "  deny  baseline/no-privileged  container \"app\" "
                             "(registry.example/shop/web:1.4)\n"));
  // The pod with an injected sidecar shows only what its owner does not.
  EXPECT_THAT(out, HasSubstr("DENY  shop/Pod/web-7c9d-fghij  (owned by Deployment/web; only "
                             "findings its owner does not show)\n"
                             "  deny  baseline/no-latest-tag  container \"mesh-proxy\" "
                             "(registry.example/mesh/proxy:latest)\n"));
  EXPECT_THAT(out, Not(HasSubstr("web-7c9d-fghij  (owned by Deployment/web; only findings its "
                                 "owner does not show)\n  deny  baseline/no-privileged")));
  EXPECT_THAT(out, HasSubstr("WARN  kube-system/DaemonSet/node-agent\n"
                             "  warn  hardening/read-only-root  container \"agent\" "
                             "(registry.example/agent:3.1)\n"));
  EXPECT_THAT(out, HasSubstr("DENY  shop/ReplicationController/legacy\n"));
  EXPECT_THAT(out, HasSubstr("DENY  shop/Pod/debug\n  deny  baseline/no-host-namespaces  pod\n"));
  EXPECT_THAT(out, HasSubstr("        fix: "));
  // Clean ones and folded ones are not listed; the Service is not a workload.
  for (const char* absent : {"shop/StatefulSet/db", "batch/CronJob/report\n", "orphan-q7x2p",
                             "shop/Service/web", "DENY  shop/ReplicaSet", "DENY  batch/Job"}) {
    EXPECT_THAT(out, Not(HasSubstr(absent))) << absent;
  }
  EXPECT_THAT(out, HasSubstr("Summary: 13 objects read, 8 workloads reported (4 more objects "
                             "reported through their owners, not twice): 3 clean, 4 with "
                             "denials, 1 with warnings only; skipped, not "
                             "workloads: Service 1\n"));
  EXPECT_THAT(out, HasSubstr("POLICY/RULE"));
  EXPECT_THAT(out, HasSubstr("baseline/no-privileged       Enforce       1       0\n"));
  EXPECT_THAT(out, HasSubstr("baseline/no-latest-tag       Enforce       2       0\n"));
  EXPECT_THAT(out, HasSubstr("hardening/read-only-root     Audit         0       3\n"));
}

TEST_F(AuditCommandTest, JsonReportOfAMixedClusterList) {
  const AuditRun run = audit("--output json " + cluster());
  EXPECT_EQ(run.exitCode, 1) << run.err;
  const json report = json::parse(run.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["kind"], "AuditReport");
  const json& summary = report["summary"];
  EXPECT_EQ(summary["objects"], 13);
  EXPECT_EQ(summary["workloads"], 8);
  EXPECT_EQ(summary["reportedThroughOwner"], 4);
  EXPECT_EQ(summary["clean"], 3);
  EXPECT_EQ(summary["withDenials"], 4);
  EXPECT_EQ(summary["withWarningsOnly"], 1);
  EXPECT_EQ(summary["unreadable"], 0);
  EXPECT_EQ(summary["skipped"], json({{"Service", 1}}));
  EXPECT_EQ(summary["imagesNotFetched"], json::array());

  const json* cronJob = workload(report, "batch", "CronJob", "report");
  ASSERT_NE(cronJob, nullptr);
  EXPECT_EQ((*cronJob)["verdict"], "clean");
  EXPECT_EQ((*cronJob)["reportedHere"], json({"Job/report-28901", "Pod/report-28901-xyz12"}));
  const json* orphan = workload(report, "batch", "Pod", "orphan-q7x2p");
  ASSERT_NE(orphan, nullptr);  // its Job is not in the list: reported on its own
  EXPECT_EQ((*orphan)["owner"], "");
  const json* legacy = workload(report, "shop", "ReplicationController", "legacy");
  ASSERT_NE(legacy, nullptr);
  ASSERT_EQ((*legacy)["findings"].size(), 2u);
  const json& latest = (*legacy)["findings"][0];
  EXPECT_EQ(latest["policy"], "baseline");
  EXPECT_EQ(latest["rule"], "no-latest-tag");
  EXPECT_EQ(latest["action"], "Enforce");
  EXPECT_EQ(latest["result"], "deny");
  EXPECT_EQ(latest["container"], "legacy");
  EXPECT_EQ(latest["containerKind"], "container");
  EXPECT_EQ(latest["image"], "registry.example/legacy");
  EXPECT_NE(latest["message"], "");
  EXPECT_NE(latest["remediation"], "");
  EXPECT_EQ((*legacy)["findings"][1]["result"], "warn");
  EXPECT_EQ(workload(report, "shop", "ReplicaSet", "web-7c9d"), nullptr);
}

TEST_F(AuditCommandTest, CleanInputFromStdinExitsZero) {
  const json list = json::parse(testutil::readFile(kData / "cluster-list.json"));
  json statefulSet;
  for (const json& item : list["items"]) {
    if (item["kind"] == "StatefulSet") statefulSet = item;
  }
  testutil::writeFile(dir_ / "db.json", statefulSet.dump());
  const AuditRun run = audit("-", dir_ / "db.json");
  EXPECT_EQ(run.exitCode, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("Summary: 1 objects read, 1 workloads reported: 1 clean, 0 with "
                                 "denials, 0 with warnings only\n"));
}

TEST_F(AuditCommandTest, WarningsOnlyExitZeroAndSeveralFilesAddUp) {
  const json list = json::parse(testutil::readFile(kData / "cluster-list.json"));
  json daemonSet;
  json statefulSet;
  for (const json& item : list["items"]) {
    if (item["kind"] == "DaemonSet") daemonSet = item;
    if (item["kind"] == "StatefulSet") statefulSet = item;
  }
  testutil::writeFile(dir_ / "agent.json", daemonSet.dump());
  testutil::writeFile(dir_ / "db.json", json({{"kind", "List"}, {"items", {statefulSet}}}).dump());
  const AuditRun run = audit("--output json " + shellQuote((dir_ / "agent.json").string()) + " " +
                             shellQuote((dir_ / "db.json").string()));
  EXPECT_EQ(run.exitCode, 0) << run.out << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report["summary"]["objects"], 2);
  EXPECT_EQ(report["summary"]["withWarningsOnly"], 1);
  EXPECT_EQ(report["workloads"][0]["source"], (dir_ / "agent.json").string());
}

TEST_F(AuditCommandTest, UsageAndInputErrorsExitTwo) {
  const struct {
    std::string args;
    std::string message;
  } cases[] = {
      {"", "name at least one input file"},
      {"--output xml " + cluster(), "--output must be table, json, policyreport or sarif"},
      {"--progress-after soon " + cluster(), "--progress-after must be a duration"},
      {shellQuote((dir_ / "missing.json").string()), "cannot read input"},
      {"--max-input-bytes 1000 " + cluster(), "is larger than 1000"},
  };
  for (const auto& c : cases) {
    const AuditRun run = audit(c.args);
    EXPECT_EQ(run.exitCode, 2) << c.args << "\n" << run.out << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(run.out, "") << c.args;
  }
}

TEST_F(AuditCommandTest, UnreadableDocumentsAreReportedAndExitTwo) {
  testutil::writeFile(dir_ / "broken.json", "{\"kind\": \"List\", \"items\": [");
  testutil::writeFile(dir_ / "array.json", "[1, 2]");
  const struct {
    std::string file;
    std::string message;
  } cases[] = {
      {"broken.json", "broken.json: could not be evaluated: is not JSON"},
      {"array.json", "array.json: could not be evaluated: expected a Kubernetes object or a List"},
  };
  for (const auto& c : cases) {
    const AuditRun run = audit(shellQuote((dir_ / c.file).string()));
    EXPECT_EQ(run.exitCode, 2) << c.file << "\n" << run.out << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.message)) << c.file;
    EXPECT_THAT(run.out, HasSubstr("ERROR " + (dir_ / c.file).string() +
                                   ": could not be "
                                   "evaluated"))
        << c.file;
    EXPECT_THAT(run.out, HasSubstr("1 unreadable")) << c.file;
  }
}

TEST_F(AuditCommandTest, StdinIsBoundedToo) {
  const AuditRun run = audit("--max-input-bytes 1000 -", kData / "cluster-list.json");
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("stdin is larger than --max-input-bytes (1000 bytes)"));
}

TEST_F(AuditCommandTest, OfflineJudgesFactRulesByOnFetchError) {
  // runAsNonRoot needs each image's config when the spec sets no UID; offline, nothing is
  // fetched, and onFetchError: Allow turns the rule into a warning naming why.
  testutil::writeFile(dir_ / "facts.yaml", R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: facts}
spec:
  action: Enforce
  onFetchError: Allow
  rules:
    - name: non-root
      runAsNonRoot: {}
)");
  const fs::path err = dir_ / "stderr";
  const testutil::CommandResult result = testutil::runCommand(
      shellQuote(IMAGEGATE_BINARY) + " audit --offline --output json --policy " +
      shellQuote((dir_ / "facts.yaml").string()) + " " + cluster() + " 2>" +
      shellQuote(err.string()));
  EXPECT_EQ(result.exitCode, 3) << result.output << testutil::readFile(err);
  const json report = json::parse(result.output);
  EXPECT_EQ(report["summary"]["withDenials"], 0);
  EXPECT_EQ(report["summary"]["imagesNotFetched"].size(), 7u);  // each image once
  EXPECT_EQ(report["summary"]["imagesNotFetched"][0]["error"],
            "not fetched: imagegate audit --offline");
}

}  // namespace
}  // namespace imagegate
