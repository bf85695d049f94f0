// Runs Kubernetes' own Pod Security Admission fixtures through the podSecurity rule: every Pod
// under shared/peer-cases/pod-security-admission/ (read in place; see its README.md) must get
// the verdict upstream expects at its level (v1.37, which `latest` is), and every denial must
// name the upstream check id. Each Pod is also wrapped as the pod template of every workload kind
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob), which
// must get the same verdict: PSA judges a workload by its template.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "admission/review.h"
#include "policy/evaluator.h"
#include "policy/loader.h"
#include "testutil/yaml_json.h"

namespace imagegate::policy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testutil::toJson;

fs::path psaCasesDir() {
  fs::path root;
  if (const char* fromEnv = std::getenv("IMAGEGATE_PEER_CASES"); fromEnv && *fromEnv) {
    root = fromEnv;
  } else {
    root = fs::path(IMAGEGATE_SOURCE_DIR "/../shared/peer-cases").lexically_normal();
  }
  return root / "pod-security-admission";
}

struct PssCase {
  std::string testName;  ///< "baseline_fail_hostports0"; empty for the stand-in case.
  json entry;            ///< The expected.json entry.
  std::string skipReason;

  std::string level() const { return entry.value("level", ""); }
  bool expectAllowed() const { return entry.value("expected", "") == "allow"; }
};

void PrintTo(const PssCase& pssCase, std::ostream* out) { *out << pssCase.testName; }

std::string sanitize(const std::string& text) {
  std::string name;
  for (const char c : text) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

const std::vector<PssCase>& allCases() {
  static const std::vector<PssCase> cases = [] {
    const fs::path expectedFile = psaCasesDir() / "expected.json";
    if (!fs::exists(expectedFile)) {
      return std::vector<PssCase>{
          {"FixturesAbsent", json::object(),
           "Pod Security Admission fixtures not found: " + expectedFile.string() +
               " does not exist; set IMAGEGATE_PEER_CASES to the folder holding "
               "pod-security-admission/"}};
    }
    std::ifstream in(expectedFile);
    std::vector<PssCase> read;
    for (const json& entry : json::parse(in)) {
      std::string file = entry.value("file", "");
      file = file.substr(0, file.rfind('.'));
      read.push_back({sanitize(file), entry, ""});
    }
    return read;
  }();
  return cases;
}

/// The kinds each Pod is judged as: the Pod itself and every workload with it as pod template.
struct Wrapper {
  std::string_view kind;
  std::string_view apiVersion;
};
constexpr Wrapper kPod{"Pod", "v1"};
constexpr Wrapper kWrappers[] = {kPod,
                                 {"Deployment", "apps/v1"},
                                 {"StatefulSet", "apps/v1"},
                                 {"DaemonSet", "apps/v1"},
                                 {"ReplicaSet", "apps/v1"},
                                 {"ReplicationController", "v1"},
                                 {"Job", "batch/v1"},
                                 {"CronJob", "batch/v1"}};

std::string wrapperName(const Wrapper& wrapper) { return std::string(wrapper.kind); }

json wrap(const json& pod, const Wrapper& wrapper) {
  const std::string name = pod.at("metadata").value("name", "pod");
  if (wrapper.kind == "Pod") return pod;
  // The template carries the pod's annotations: PSA reads AppArmor and seccomp annotations
  // from the template's metadata.
  json templateMetadata = {{"labels", {{"app", name}}}};
  if (pod.at("metadata").contains("annotations")) {
    templateMetadata["annotations"] = pod.at("metadata").at("annotations");
  }
  const json podTemplate = {{"metadata", templateMetadata}, {"spec", pod.at("spec")}};
  json spec = {{"template", podTemplate}};
  if (wrapper.kind == "CronJob") {
    spec = {{"schedule", "@hourly"}, {"jobTemplate", {{"spec", spec}}}};
  } else if (wrapper.kind != "Job") {
    spec["selector"] = {{"matchLabels", {{"app", name}}}};
  }
  return {{"apiVersion", wrapper.apiVersion},
          {"kind", wrapper.kind},
          {"metadata", {{"name", name}}},
          {"spec", spec}};
}

json review(const json& object, const Wrapper& wrapper) {
  const std::string apiVersion = object.value("apiVersion", "v1");
  const auto slash = apiVersion.find('/');
  const std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "pss"},
            {"kind", {{"group", group}, {"version", "v1"}, {"kind", wrapperName(wrapper)}}},
            {"namespace", "default"},
            {"operation", "CREATE"},
            {"object", object}}}};
}

const PolicySet& policyFor(const std::string& level, const std::string& version) {
  static std::map<std::string, PolicySet> cache;
  const std::string key = level + ":" + version;
  auto found = cache.find(key);
  if (found == cache.end()) {
    const std::string text =
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\n"
        "metadata: {name: pss}\nspec:\n  rules:\n    - name: pss\n"
        "      podSecurity: {level: " +
        level + ", version: " + version + "}\n";
    found = cache.emplace(key, loadPoliciesFromString(text, "pss.yaml")).first;
  }
  return found->second;
}

struct Verdict {
  bool decoded = false;
  bool allowed = true;
  std::string message;  ///< The findings, or the decoder's problem.
};

Verdict judge(const PssCase& pssCase, const Wrapper& wrapper,
              const std::string& version = "latest") {
  const YAML::Node node =
      YAML::LoadFile((psaCasesDir() / pssCase.entry.value("file", "")).string());
  const json body = review(wrap(toJson(node), wrapper), wrapper);
  auto decoded = admission::decodeReview(body.dump());
  Verdict verdict;
  if (const auto* malformed = std::get_if<admission::MalformedRequest>(&decoded.request)) {
    verdict.message = malformed->problem;
    return verdict;
  }
  verdict.decoded = true;
  const auto& request = std::get<admission::AdmissionRequest>(decoded.request);
  const PolicySet policies = policyFor(pssCase.level(), version);
  for (const RuleResult& result : evaluate(policies, *request.object, request.namespaceName)) {
    if (result.status == RuleStatus::kPass) continue;
    verdict.allowed = false;
    verdict.message += result.message + "\n";
  }
  return verdict;
}

/// At restricted, PSA replaces these baseline checks by the restricted check that overrides
/// them, so a restricted fixture for the baseline check is denied under the restricted id.
std::string idAtLevel(const std::string& checkId, const std::string& level) {
  static const std::map<std::string, std::string> kOverriddenBy = {
      {"hostPathVolumes", "restrictedVolumes"},
      {"capabilities_baseline", "capabilities_restricted"},
      {"seccompProfile_baseline", "seccompProfile_restricted"},
      {"procMount", "procMount_restricted"}};
  const auto found = kOverriddenBy.find(checkId);
  return level == "restricted" && found != kOverriddenBy.end() ? found->second : checkId;
}

/// Why the verdict differs from upstream's, or "" when it agrees and names the check.
std::string disagreement(const PssCase& pssCase, const Verdict& verdict) {
  if (!verdict.decoded) return "the review was malformed: " + verdict.message;
  if (verdict.allowed != pssCase.expectAllowed()) {
    return std::string("expected ") + (pssCase.expectAllowed() ? "allow" : "deny") + ", got " +
           (verdict.allowed ? "allow" : "deny: " + verdict.message);
  }
  if (verdict.allowed) return "";
  const std::string id = idAtLevel(pssCase.entry.value("check_id", ""), pssCase.level());
  if (verdict.message.find(id + ": ") == std::string::npos) {
    return "the denial does not name check " + id + ": " + verdict.message;
  }
  const std::string reason = pssCase.entry.value("upstream_reason_substring", "");
  if (verdict.message.find(reason) == std::string::npos) {
    return "the denial lacks PSA's reason \"" + reason + "\": " + verdict.message;
  }
  return "";
}

class PssCaseTest : public testing::TestWithParam<PssCase> {};

TEST_P(PssCaseTest, GetsTheUpstreamVerdictAsPodAndAsEveryWorkloadTemplate) {
  const PssCase& pssCase = GetParam();
  if (!pssCase.skipReason.empty()) GTEST_SKIP() << pssCase.skipReason;
  for (const Wrapper& wrapper : kWrappers) {
    const std::string problem = disagreement(pssCase, judge(pssCase, wrapper));
    EXPECT_EQ(problem, "") << pssCase.entry.value("file", "") << " as a " << wrapperName(wrapper);
  }
  // The fixtures are v1.37's, which `latest` means; naming the version must not change anything.
  EXPECT_EQ(disagreement(pssCase, judge(pssCase, kPod, "v1.37")), "");
}

INSTANTIATE_TEST_SUITE_P(pss, PssCaseTest, testing::ValuesIn(allCases()));

// The per-level counts in one process (ctest runs each case in a process of its own).
TEST(pssCases, PrintsCounts) {
  const auto& cases = allCases();
  if (cases.size() == 1 && !cases.front().skipReason.empty()) {
    GTEST_SKIP() << cases.front().skipReason;
  }
  struct Tally {
    int total = 0;
    int allow = 0;
    int deny = 0;
    std::map<std::string_view, int> matched;
  };
  std::map<std::string, Tally> tallies;
  std::vector<std::string> problems;
  for (const PssCase& pssCase : cases) {
    Tally& tally = tallies[pssCase.level()];
    ++tally.total;
    ++(pssCase.expectAllowed() ? tally.allow : tally.deny);
    for (const Wrapper& wrapper : kWrappers) {
      const std::string problem = disagreement(pssCase, judge(pssCase, wrapper));
      if (problem.empty()) {
        ++tally.matched[wrapper.kind];
      } else {
        problems.push_back(pssCase.testName + " as " + wrapperName(wrapper) + ": " + problem);
      }
    }
  }
  std::cout << "\nPod Security Admission fixtures (v1.37): verdict, check id and reason as "
               "upstream, as a Pod and as the template of each workload kind\n"
            << std::left << std::setw(12) << "level" << std::right << std::setw(6) << "total"
            << std::setw(6) << "allow" << std::setw(6) << "deny";
  for (const Wrapper& wrapper : kWrappers) std::cout << " " << wrapper.kind;
  std::cout << "\n";
  for (auto& [level, tally] : tallies) {
    std::cout << std::left << std::setw(12) << level << std::right << std::setw(6) << tally.total
              << std::setw(6) << tally.allow << std::setw(6) << tally.deny;
    for (const Wrapper& wrapper : kWrappers) {
      std::cout << std::setw(static_cast<int>(wrapper.kind.size()) + 1)
                << tally.matched[wrapper.kind];
    }
    std::cout << "\n";
  }
  for (const std::string& problem : problems) std::cout << "  MISMATCH " << problem << "\n";
  std::cout << std::flush;
  EXPECT_TRUE(problems.empty()) << problems.size() << " mismatches, listed above";
}

}  // namespace
}  // namespace imagegate::policy
