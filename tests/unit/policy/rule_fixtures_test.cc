// Rule semantics as data: every tests/data/rules/<ruleKey>/<verdict>-<what>.yaml is one test.
//
// A fixture holds the rule's body (`rule`), what it is checked on (`pod`, a PodSpec as written
// in a manifest, with the Pod's `metadata` (annotations) optionally beside it; `container`,
// shorthand for a pod with that one container; or `image`, a
// reference checked as `imagegate check` does), optionally the registry's answer for every image
// (`facts: {user, layers: [compressed sizes], history: [created_by per layer], files: [[entry,
// ...] per layer]}` or `fetchError`; an entry is {path, type, mode, target, secret}, type file by
// default, and etc/passwd and etc/group may have `content`; `filesError` when the layers could not
// be read), the policy's `onFetchError`, and a `message` the decisive result must contain. The
// verdict (pass, fail, error, warn) is the status of the first result that is not a pass, or pass
// when all pass.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "admission/review.h"
#include "cache/rule_result_cache.h"
#include "image/file_index.h"
#include "policy/evaluator.h"
#include "policy/findings_memo.h"
#include "policy/loader.h"
#include "policy/rule.h"

namespace imagegate::policy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kFixtureRoot = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/rules";

struct Fixture {
  fs::path path;
  std::string ruleKey;  ///< The directory name.
  std::string verdict;  ///< The file name up to its first '-'.
};

// Failure output names the file instead of dumping bytes.
void PrintTo(const Fixture& fixture, std::ostream* os) { *os << fixture.path.string(); }

std::vector<Fixture> findFixtures() {
  std::vector<Fixture> fixtures;
  for (const auto& entry : fs::recursive_directory_iterator(kFixtureRoot)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string stem = entry.path().stem().string();
    fixtures.push_back({entry.path(), entry.path().parent_path().filename().string(),
                        stem.substr(0, stem.find('-'))});
  }
  std::sort(fixtures.begin(), fixtures.end(),
            [](const Fixture& a, const Fixture& b) { return a.path < b.path; });
  return fixtures;
}

/// "runAsNonRoot_fail_uid_zero": test names allow only letters, digits and '_'.
std::string testName(const ::testing::TestParamInfo<Fixture>& info) {
  std::string name = info.param.ruleKey + "_" + info.param.path.stem().string();
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
  return name;
}

/// Plain scalars get YAML's types (booleans, integers); quoted ones stay strings.
json scalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "?") {
    if (text == "true" || text == "false") return text == "true";
    if (!text.empty() && text.find_first_not_of("-0123456789") == std::string::npos) {
      return std::stoll(text);
    }
  }
  return text;
}

json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json object = json::object();
      for (const auto& entry : node) object[entry.first.Scalar()] = toJson(entry.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      json array = json::array();
      for (const auto& item : node) array.push_back(toJson(item));
      return array;
    }
    case YAML::NodeType::Scalar:
      return scalarToJson(node);
    default:
      return nullptr;
  }
}

/// A one-rule policy read by the loader, as a policy file would be.
PolicySet policyFor(const Fixture& fixture, const YAML::Node& doc) {
  YAML::Node rule;
  rule["name"] = "rule";
  rule[fixture.ruleKey] = doc["rule"];
  YAML::Node policy;
  policy["apiVersion"] = "imagegate.dev/v1alpha1";
  policy["kind"] = "ImagePolicy";
  policy["metadata"]["name"] = "fixture";
  if (doc["onFetchError"]) policy["spec"]["onFetchError"] = doc["onFetchError"];
  policy["spec"]["rules"].push_back(rule);
  YAML::Emitter out;
  out << policy;
  return loadPoliciesFromString(out.c_str(), fixture.path.string());
}

/// The pod under review, decoded from an AdmissionReview as the webhook decodes it.
admission::AdmissionRequest requestFor(const YAML::Node& doc) {
  json spec = doc["pod"] ? toJson(doc["pod"]) : json::object();
  if (doc["container"]) {
    json container = toJson(doc["container"]);
    if (!container.contains("name")) container["name"] = "app";
    spec["containers"] = json::array({container});
  }
  json object = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"spec", spec}};
  if (doc["metadata"]) object["metadata"] = toJson(doc["metadata"]);
  const json review = {{"apiVersion", "admission.k8s.io/v1"},
                       {"kind", "AdmissionReview"},
                       {"request",
                        {{"uid", "fixture"},
                         {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                         {"namespace", "default"},
                         {"operation", "CREATE"},
                         {"object", object}}}};
  auto decoded = admission::decodeReview(review.dump());
  return std::get<admission::AdmissionRequest>(std::move(decoded.request));
}

image::EntryType entryTypeOf(const std::string& name) {
  static const std::map<std::string, image::EntryType> types = {
      {"file", image::EntryType::kRegular},    {"dir", image::EntryType::kDirectory},
      {"symlink", image::EntryType::kSymlink}, {"hardlink", image::EntryType::kHardlink},
      {"char", image::EntryType::kCharDevice}, {"block", image::EntryType::kBlockDevice},
      {"fifo", image::EntryType::kFifo},       {"whiteout", image::EntryType::kWhiteout},
      {"opaque", image::EntryType::kOpaque},
  };
  return types.at(name);
}

image::SecretKind secretKindOf(const std::string& name) {
  static const std::map<std::string, image::SecretKind> kinds = {
      {"privateKey", image::SecretKind::kPrivateKey},
      {"dotEnv", image::SecretKind::kDotEnv},
      {"gitDirectory", image::SecretKind::kGitDirectory},
      {"npmCredentials", image::SecretKind::kNpmCredentials},
      {"pypiCredentials", image::SecretKind::kPypiCredentials},
      {"netrcCredentials", image::SecretKind::kNetrcCredentials},
      {"dockerCredentials", image::SecretKind::kDockerCredentials},
      {"awsCredentials", image::SecretKind::kAwsCredentials},
      {"gcpServiceAccount", image::SecretKind::kGcpServiceAccount},
  };
  return kinds.at(name);
}

/// One layer of a fixture's `files`: entries as a layer scan would have indexed them.
std::shared_ptr<const image::LayerIndex> layerIndexOf(const YAML::Node& layer) {
  image::LayerIndexBuilder builder;
  for (const auto& entry : layer) {
    // The content of etc/passwd and etc/group, as a layer scan captures it.
    if (entry["content"] && entry["path"].as<std::string>() == "etc/passwd") {
      builder.setPasswd(entry["content"].as<std::string>());
    }
    if (entry["content"] && entry["path"].as<std::string>() == "etc/group") {
      builder.setGroup(entry["content"].as<std::string>());
    }
    const auto type = entryTypeOf(entry["type"].as<std::string>("file"));
    const std::string mode =
        entry["mode"].as<std::string>(type == image::EntryType::kDirectory ? "0755" : "0644");
    builder.add(image::normalizeLayerPath(entry["path"].as<std::string>()), type,
                static_cast<std::uint32_t>(std::stoul(mode, nullptr, 8)), 0, 0,
                entry["size"].as<std::uint64_t>(0), entry["target"].as<std::string>(""),
                entry["secret"] ? secretKindOf(entry["secret"].as<std::string>())
                                : image::SecretKind::kNone);
  }
  return std::make_shared<const image::LayerIndex>(std::move(builder).build());
}

/// What the registry answers for `image`: `facts`, `fetchError`, or nothing was fetched.
std::optional<ImageLookup> lookupFor(const YAML::Node& doc, const image::ImageRef& image) {
  ImageLookup lookup;
  if (doc["fetchError"]) {
    lookup.error = doc["fetchError"].as<std::string>();
    return lookup;
  }
  if (!doc["facts"]) return std::nullopt;
  image::ImageFacts facts;
  facts.ref = image;
  // Facts are named by their manifest's digest, as a registry's are: the same `facts` gives the
  // same digest, different ones a different digest.
  std::ostringstream text;
  text << doc["facts"];
  facts.manifestDigest = "sha256:fixture-" + std::to_string(std::hash<std::string>{}(text.str()));
  facts.imageConfig.user = doc["facts"]["user"].as<std::string>("1000");
  for (const auto& size : doc["facts"]["layers"]) {
    facts.layers.push_back({"", "", size.as<std::uint64_t>()});
  }
  for (const auto& line : doc["facts"]["history"]) {
    facts.imageConfig.layerHistory.push_back(line.as<std::string>());
  }
  if (const YAML::Node layers = doc["facts"]["files"]) {
    std::vector<std::shared_ptr<const image::LayerIndex>> indexes;
    for (const auto& layer : layers) indexes.push_back(layerIndexOf(layer));
    while (facts.layers.size() < indexes.size()) {
      const std::size_t i = facts.layers.size();
      facts.layers.push_back({"application/vnd.oci.image.layer.v1.tar+gzip",
                              "sha256:" + std::string(64, static_cast<char>('0' + i % 10)), 0});
    }
    lookup.files = std::make_shared<const image::MergedFilesystem>(std::move(indexes));
  }
  if (doc["filesError"]) lookup.filesError = doc["filesError"].as<std::string>();
  lookup.facts = std::move(facts);
  return lookup;
}

ImageFactsMap factsFor(const YAML::Node& doc, const admission::AdmissionRequest& request) {
  ImageFactsMap facts;
  for (const admission::Container& container : request.object->podSpec->containers) {
    try {
      const image::ImageRef image = image::parseImageRef(container.image);
      if (auto lookup = lookupFor(doc, image)) facts[image] = std::move(*lookup);
    } catch (const image::InvalidReference&) {
      // The rule reports it; there is nothing to fetch.
    }
  }
  return facts;
}

std::vector<RuleResult> resultsFor(const Fixture& fixture, const YAML::Node& doc) {
  const PolicySet policies = policyFor(fixture, doc);
  if (doc["image"]) {
    const auto image = image::parseImageRef(doc["image"].as<std::string>());
    const ImageFactsMap facts{{image, lookupFor(doc, image).value_or(ImageLookup{})}};
    return evaluate(planImage(policies, image), facts);
  }
  const admission::AdmissionRequest request = requestFor(doc);
  return evaluate(policies, *request.object, request.namespaceName, factsFor(doc, request));
}

std::string verdictOf(RuleStatus status) {
  switch (status) {
    case RuleStatus::kPass:
      return "pass";
    case RuleStatus::kFail:
      return "fail";
    case RuleStatus::kError:
      return "error";
    case RuleStatus::kWarning:
      return "warn";
  }
  return "?";
}

class RuleFixture : public ::testing::TestWithParam<Fixture> {};

TEST_P(RuleFixture, HasItsVerdict) {
  const Fixture& fixture = GetParam();
  const YAML::Node doc = YAML::LoadFile(fixture.path.string());
  const std::vector<RuleResult> results = resultsFor(fixture, doc);
  ASSERT_FALSE(results.empty()) << "the rule was not run on " << fixture.path;
  const auto decisive = std::find_if(results.begin(), results.end(), [](const RuleResult& r) {
    return r.status != RuleStatus::kPass;
  });
  const RuleResult& result = decisive == results.end() ? results.front() : *decisive;
  EXPECT_EQ(verdictOf(result.status), fixture.verdict) << result.message;
  if (doc["message"]) {
    EXPECT_THAT(result.message, HasSubstr(doc["message"].as<std::string>()));
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, RuleFixture, ::testing::ValuesIn(findFixtures()), testName);

/// Everything a result says, for comparing results computed with and without a memo.
std::string describe(const RuleResult& r) {
  std::string text = r.policy + "|" + r.rule + "|" + std::string(actionName(r.action)) + "|" +
                     verdictOf(r.status) + "|" + r.container.value_or("(pod)") + "|" +
                     std::to_string(r.containerKind ? static_cast<int>(*r.containerKind) : -1) +
                     "|" + r.message + "|" + r.remediation;
  for (const FileFinding& f : r.files) {
    text += "|" + f.path + "@" + std::to_string(f.layer) + "," + f.layerDigest + "," + f.history +
            "," + f.detail;
  }
  return text;
}

std::vector<std::string> describe(const std::vector<RuleResult>& results) {
  std::vector<std::string> lines;
  for (const RuleResult& r : results) lines.push_back(describe(r));
  return lines;
}

/// One fixture as something to evaluate: its plan (pod or bare image) and its registry facts.
struct Case {
  Fixture fixture;
  std::optional<admission::AdmissionRequest> request;  ///< Unset for an `image` fixture.
  std::optional<image::ImageRef> image;
  ImageFactsMap facts;

  ReviewPlan plan(const PolicySet& policies) const {
    if (image) return planImage(policies, *image);
    return planReview(policies, *request->object, request->namespaceName);
  }
};

Case caseOf(const Fixture& fixture, const YAML::Node& doc) {
  Case c{fixture, std::nullopt, std::nullopt, {}};
  if (doc["image"]) {
    c.image = image::parseImageRef(doc["image"].as<std::string>());
    c.facts = {{*c.image, lookupFor(doc, *c.image).value_or(ImageLookup{})}};
  } else {
    c.request = requestFor(doc);
    c.facts = factsFor(doc, *c.request);
  }
  return c;
}

// Each fixture's own one-rule policy, evaluated without the memo, with it cold and with it warm:
// the same results, field by field.
TEST(RuleResultMemo, EveryFixtureGivesTheSameResultsWithAndWithoutTheMemo) {
  cache::RuleResultCache memo(std::size_t{64} << 20);
  std::uint64_t revision = 0;
  for (const Fixture& fixture : findFixtures()) {
    const YAML::Node doc = YAML::LoadFile(fixture.path.string());
    const PolicySet policies = policyFor(fixture, doc);
    const Case c = caseOf(fixture, doc);
    const MemoScope scope{&memo, ++revision};
    const auto plain = describe(evaluate(c.plan(policies), c.facts));
    EXPECT_EQ(describe(evaluate(c.plan(policies), c.facts, scope)), plain) << fixture.path;
    EXPECT_EQ(describe(evaluate(c.plan(policies), c.facts, scope)), plain) << fixture.path;
  }
  EXPECT_GT(memo.stats().hits, 0u);
}

// Every fixture's rule in one policy set, and every fixture's pod (or image) evaluated under it
// through one memo, twice over: findings computed for one pod are handed to every other pod with
// the same image and facts, so a rule that claims to read only the image but reads the pod
// would show here.
TEST(RuleResultMemo, FindingsOfOnePodAreRightForEveryOtherPodOfTheSameImage) {
  PolicySet all;
  std::vector<Case> cases;
  for (const Fixture& fixture : findFixtures()) {
    const YAML::Node doc = YAML::LoadFile(fixture.path.string());
    PolicySet own = policyFor(fixture, doc);
    for (Policy& policy : own.policies) {
      policy.name = fixture.ruleKey + "/" + fixture.path.stem().string();
      all.policies.push_back(std::move(policy));
    }
    cases.push_back(caseOf(fixture, doc));
  }
  cache::RuleResultCache memo(std::size_t{64} << 20);
  for (int pass = 0; pass < 2; ++pass) {
    for (const Case& c : cases) {
      const auto plain = describe(evaluate(c.plan(all), c.facts));
      EXPECT_EQ(describe(evaluate(c.plan(all), c.facts, MemoScope{&memo, 1})), plain)
          << c.fixture.path << " (pass " << pass << ")";
    }
  }
  const cache::CacheStats stats = memo.stats();
  EXPECT_GT(stats.hits, stats.misses);
  EXPECT_EQ(stats.evictions, 0u);
}

// Every fixture evaluated by several threads at once through one memo, as a burst of reviews
// does: each evaluation waits for findings another is computing, and none waits for another that
// waits for it (that would hang here), and every result is the one computed without a memo.
TEST(RuleResultMemo, ConcurrentEvaluationsShareFindingsAndAgreeWithoutTheMemo) {
  std::vector<std::pair<Case, PolicySet>> cases;
  for (const Fixture& fixture : findFixtures()) {
    const YAML::Node doc = YAML::LoadFile(fixture.path.string());
    cases.emplace_back(caseOf(fixture, doc), policyFor(fixture, doc));
  }
  using Described = std::vector<std::string>;  // what describe() says of the results
  std::vector<Described> plain;
  for (const auto& [c, policies] : cases) {
    plain.push_back(describe(evaluate(c.plan(policies), c.facts)));
  }
  cache::RuleResultCache memo(std::size_t{64} << 20);
  constexpr int kThreads = 6;
  std::vector<std::vector<Described>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& [c, policies] : cases) {
        seen[t].push_back(describe(evaluate(c.plan(policies), c.facts, MemoScope{&memo, 1})));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), plain.size());
    for (std::size_t i = 0; i < plain.size(); ++i) {
      EXPECT_EQ(seen[t][i], plain[i]) << cases[i].first.fixture.path << " (thread " << t << ")";
    }
  }
  const cache::CacheStats stats = memo.stats();
  EXPECT_GT(stats.hits, stats.misses);
}

// An image written to look like another image's key (it does not parse) gets its own findings,
// whatever was kept for the image it imitates.
TEST(RuleResultMemo, AnImageThatSpellsAnotherImagesKeyGetsItsOwnFindings) {
  const PolicySet policies = loadPoliciesFromString(
      "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: registries}\n"
      "spec:\n  rules:\n    - name: allowed\n      allowedRegistries: "
      "[\"registry.example.com/*\"]\n",
      "registries.yaml");
  const std::string legit = "registry.example.com/team/app:1";
  YAML::Node doc;
  doc["pod"]["containers"][0]["name"] = "legit";
  doc["pod"]["containers"][0]["image"] = legit;
  doc["pod"]["containers"][1]["name"] = "imitation";
  for (const char* tail : {"\nsha256:d", "\nsha256:d\n", "\n", "F", "N"}) {
    doc["pod"]["containers"][1]["image"] = legit + tail;
    const admission::AdmissionRequest request = requestFor(doc);
    ImageFactsMap facts;
    image::ImageFacts known;
    known.ref = image::parseImageRef(legit);
    known.manifestDigest = "sha256:d";
    facts[known.ref] = ImageLookup{known, "", nullptr, "", ""};
    cache::RuleResultCache memo(std::size_t{1} << 20);
    const ReviewPlan plan = planReview(policies, *request.object, request.namespaceName);
    const auto plain = describe(evaluate(plan, facts));
    EXPECT_EQ(describe(evaluate(plan, facts, MemoScope{&memo, 1})), plain);
    EXPECT_EQ(describe(evaluate(plan, facts, MemoScope{&memo, 1})), plain);
  }
}

// The same images under a second revision of the rules (a reload): the new rules decide, not
// the findings kept for the old ones.
TEST(RuleResultMemo, ANewRevisionIsEvaluatedAfresh) {
  const auto policiesAllowing = [](const std::string& pattern) {
    return loadPoliciesFromString(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: registries}\n"
        "spec:\n  rules:\n    - name: allowed\n      allowedRegistries: [\"" +
            pattern + "\"]\n",
        "registries.yaml");
  };
  YAML::Node doc;
  doc["container"]["image"] = "registry.example.com/team/app:1";
  const admission::AdmissionRequest request = requestFor(doc);
  cache::RuleResultCache memo(std::size_t{1} << 20);

  const PolicySet before = policiesAllowing("registry.example.com/*");
  const auto first = evaluate(before, *request.object, request.namespaceName);
  ASSERT_EQ(
      evaluate(planReview(before, *request.object, request.namespaceName), {}, MemoScope{&memo, 1})
          .front()
          .status,
      RuleStatus::kPass);
  EXPECT_EQ(memo.stats().entries, 1u);

  const PolicySet after = policiesAllowing("ghcr.io/*");
  const auto results =
      evaluate(planReview(after, *request.object, request.namespaceName), {}, MemoScope{&memo, 2});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.front().status, RuleStatus::kFail);
  EXPECT_EQ(describe(results), describe(evaluate(after, *request.object, request.namespaceName)));
  EXPECT_EQ(first.front().status, RuleStatus::kPass);
}

TEST(RuleFixtures, EveryRuleTypeHasPassingAndFailingFixtures) {
  std::set<std::string> seen;
  for (const Fixture& fixture : findFixtures())
    seen.insert(fixture.ruleKey + "/" + fixture.verdict);
  for (const RuleType& type : ruleTypes()) {
    EXPECT_TRUE(seen.count(std::string(type.key) + "/pass")) << type.key << " has no pass-*.yaml";
    EXPECT_TRUE(seen.count(std::string(type.key) + "/fail")) << type.key << " has no fail-*.yaml";
  }
}

TEST(RuleFixtures, EveryDirectoryIsARuleTypeAndEveryNameAVerdict) {
  std::set<std::string> keys;
  for (const RuleType& type : ruleTypes()) keys.insert(std::string(type.key));
  for (const Fixture& fixture : findFixtures()) {
    EXPECT_TRUE(keys.count(fixture.ruleKey)) << fixture.path << ": no such rule type";
    EXPECT_THAT((std::set<std::string>{"pass", "fail", "error", "warn"}),
                ::testing::Contains(fixture.verdict))
        << fixture.path;
  }
}

}  // namespace
}  // namespace imagegate::policy
