// Drives the real `imagegate` binary against real OCI registries (Debian's docker-registry,
// started by the fixture scripts in tests/fixtures/registry): `check` exit codes and messages,
// `serve --registry-config` answering AdmissionReviews whose verdict depends on the image's config
// and sizes, including registries that are down or never answer, and `review` agreeing with
// `serve`.
//
// Building the images and starting and filling the registries takes tens of seconds, so it is
// done once per run (FactsFixtures) and this binary is one CTest test (tests/registry_tests.cmake).
// Every output of every command is checked for the registry credentials at the end of the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "testutil/admission_review.h"
#include "testutil/certificates.h"
#include "testutil/fixture_registry.h"
#include "testutil/server_process.h"
#include "testutil/shell.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace imagegate::testutil;  // NOLINT: test helpers

const fs::path kFixtures = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/fixtures/registry";

// A liveness limit only, never a speed measurement: the machine may be busy with other builds.
constexpr const char* kCommandTimeout = "120";

// ---------------------------------------------------------------------------------------------
// Outputs

// Every output any imagegate command produced, checked for credentials at the end of the run:
// a leak in any message, not only the wrong-password one, is a bug.
std::mutex outputsMutex;
std::vector<std::string> allOutputs;

void remember(const std::string& output) {
  std::lock_guard lock(outputsMutex);
  allOutputs.push_back(output);
}

constexpr const char* kCheckPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: image-facts
spec:
  action: Enforce
  rules:
    - name: non-root
      runAsNonRoot: {}
    - name: small
      maxImageSize: {compressed: 5Mi}
)";

/// Rules on the files inside the images: their layers are fetched and scanned.
constexpr const char* kFilesPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: image-files
spec:
  action: Enforce
  rules:
    - name: no-shells
      forbiddenFiles: {presets: [shells]}
)";

/// Two policies for the server, split by image glob: every image is judged with onFetchError
/// Deny except those under STOPPED/allow/, which get onFetchError Allow.
std::string servePolicies(const std::string& stoppedHost) {
  const std::string allowGlob = "\"" + stoppedHost + "/allow/*\"";
  return R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: facts-deny
spec:
  action: Enforce
  onFetchError: Deny
  match:
    excludeImages: [)" +
         allowGlob + R"(]
  rules:
    - name: non-root
      runAsNonRoot: {}
    - name: small
      maxImageSize: {compressed: 5Mi}
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: facts-allow
spec:
  action: Enforce
  onFetchError: Allow
  match:
    images: [)" +
         allowGlob + R"(]
  rules:
    - name: non-root
      runAsNonRoot: {}
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: files-deny
spec:
  action: Enforce
  match:
    namespaces: [files]
  rules:
    - name: no-shells
      forbiddenFiles: {presets: [shells]}
)";
}

/// Built once per run: the images, a tls-basic registry (credentials from a docker config, private
/// CA) and a token registry holding them, a plain registry that is stopped at once (unreachable)
/// and a black hole; the registry configs and policies the tests use.
class FactsFixtures : public ::testing::Environment {
 public:
  static const std::string& setupError() { return setupError_; }
  static const fs::path& root() { return root_; }
  static FixtureRegistry& tls() { return *tls_; }
  static FixtureRegistry& token() { return *token_; }
  static FixtureRegistry& stopped() { return *stopped_; }
  static FixtureRegistry& blackhole() { return *blackhole_; }
  static fs::path file(const std::string& name) { return root_ / name; }

  void SetUp() override {
    try {
      root_ = makeTestDir("facts-it");
      const fs::path images = root_ / "images";
      runFixtureScript(kFixtures, "build-images.sh", {images.string()}, root_ / "build-images.log");
      tls_ = std::make_unique<FixtureRegistry>(kFixtures, "tls-basic", root_ / "tls");
      token_ = std::make_unique<FixtureRegistry>(kFixtures, "token", root_ / "token");
      stopped_ = std::make_unique<FixtureRegistry>(kFixtures, "plain", root_ / "stopped");
      blackhole_ = std::make_unique<FixtureRegistry>(kFixtures, "blackhole", root_ / "blackhole");
      // Starting and pushing is mostly waiting (registry start-up, skopeo round trips), so the
      // four run side by side. Every start is awaited before the first error is reported, so
      // TearDown never races a half-started registry.
      std::vector<std::future<void>> starts;
      const auto startAndPush = [&images](FixtureRegistry& registry) {
        registry.start();
        registry.push(images);
      };
      starts.push_back(std::async(std::launch::async, [&] { startAndPush(*tls_); }));
      starts.push_back(std::async(std::launch::async, [&] { startAndPush(*token_); }));
      starts.push_back(std::async(std::launch::async, [] { stopped_->start(); }));
      starts.push_back(std::async(std::launch::async, [] { blackhole_->start(); }));
      std::string errors;
      for (auto& start : starts) {
        try {
          start.get();
        } catch (const std::exception& e) {
          errors += std::string(e.what()) + "\n";
        }
      }
      if (!errors.empty()) throw std::runtime_error(errors);
      stopped_->stop();
      writeConfigs();
      readSecrets();
    } catch (const std::exception& e) {
      setupError_ = e.what();
    }
  }

  void TearDown() override {
    for (FixtureRegistry* registry : {tls_.get(), token_.get(), stopped_.get(), blackhole_.get()}) {
      if (registry == nullptr) continue;
      try {
        registry->stop();
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
    {
      std::lock_guard lock(outputsMutex);
      // Guards against a vacuous check: every test adds at least one output.
      if (setupError_.empty()) {
        EXPECT_GE(allOutputs.size(), static_cast<std::size_t>(
                                         ::testing::UnitTest::GetInstance()->test_to_run_count()));
      }
      for (const std::string& output : allOutputs) {
        for (const std::string& secret : secrets_) {
          EXPECT_THAT(output, Not(HasSubstr(secret)));
        }
      }
    }
    if (!root_.empty() && std::getenv("IMAGEGATE_KEEP_FIXTURES") == nullptr &&
        ::testing::UnitTest::GetInstance()->Passed()) {
      std::error_code ignored;
      fs::remove_all(root_, ignored);
    } else if (!root_.empty()) {
      std::cout << "fixtures and logs kept in " << root_ << "\n";
    }
  }

 private:
  static void writeConfigs() {
    const FixtureRegistry& t = *tls_;
    writeFile(file("check.yaml"), "dockerConfig: " + (t.dir() / "docker-config.json").string() +
                                      "\nregistries:\n  - host: '" + t.host() +
                                      "'\n    caFile: " + t.ca() + "\n");
    writeFile(file("check-wrong.yaml"),
              "dockerConfig: " + (t.dir() / "docker-config-wrong.json").string() +
                  "\nregistries:\n  - host: '" + t.host() + "'\n    caFile: " + t.ca() + "\n");
    // The misspelt key is on line 4, column 5.
    writeFile(file("malformed.yaml"), "platform: linux/amd64\nregistries:\n  - host: '" + t.host() +
                                          "'\n    caFlie: " + t.ca() + "\n");
    // Anonymous: the token service grants pull without credentials. It has its own port, and
    // the same CA.
    const FixtureRegistry& k = *token_;
    writeFile(file("token.yaml"), "registries:\n  - {host: '" + k.host() + "', caFile: " + k.ca() +
                                      "}\n  - {host: '" + k.tokenAuthority() +
                                      "', caFile: " + k.ca() + "}\n");
    writeFile(file("serve.yaml"),
              "dockerConfig: " + (t.dir() / "docker-config.json").string() +
                  "\ntimeouts: {connect: 2s, request: 5s}\nregistries:\n  - {host: '" + t.host() +
                  "', caFile: " + t.ca() + "}\n  - {host: '" + stopped_->host() +
                  "', insecure: true}\n  - {host: '" + blackhole_->host() + "', insecure: true}\n");
    writeFile(file("check-policy.yaml"), kCheckPolicy);
    writeFile(file("files-policy.yaml"), kFilesPolicy);
    writeFile(file("serve-policy.yaml"), servePolicies(stopped_->host()));
  }

  /// The password and the base64 user:password of every docker config the fixtures wrote.
  static void readSecrets() {
    secrets_ = {tls_->env("REGISTRY_PASSWORD")};
    for (const std::string name : {"docker-config.json", "docker-config-wrong.json"}) {
      const json config = json::parse(readFile(tls_->dir() / name));
      for (const auto& [host, entry] : config.at("auths").items()) {
        secrets_.push_back(entry.at("auth").get<std::string>());
      }
    }
    for (const std::string& secret : secrets_) {
      if (secret.empty()) throw std::runtime_error("empty fixture secret");
    }
  }

  static inline fs::path root_;
  static inline std::string setupError_;
  static inline std::vector<std::string> secrets_;
  static inline std::unique_ptr<FixtureRegistry> tls_;
  static inline std::unique_ptr<FixtureRegistry> token_;
  static inline std::unique_ptr<FixtureRegistry> stopped_;
  static inline std::unique_ptr<FixtureRegistry> blackhole_;
};

// ---------------------------------------------------------------------------------------------
// The imagegate binary

struct ToolRun {
  int exitCode = -1;
  std::string out;
  std::string err;

  std::string all() const { return out + err; }
  json outJson() const { return json::parse(out, nullptr, false); }
};

/// Runs `imagegate ARGS` to completion (stdin from `input`, or /dev/null).
ToolRun imagegate(const std::vector<std::string>& args, const fs::path& input = "/dev/null") {
  static std::atomic<int> counter{0};
  const fs::path err = FactsFixtures::root() / ("cmd-" + std::to_string(++counter) + ".err");
  std::string command =
      std::string("timeout ") + kCommandTimeout + " " + shellQuote(IMAGEGATE_BINARY);
  for (const std::string& arg : args) command += " " + shellQuote(arg);
  command += " <" + shellQuote(input.string()) + " 2>" + shellQuote(err.string());
  const CommandResult result = runCommand(command);
  ToolRun run{result.exitCode, result.output, readFile(err)};
  remember(run.all());
  return run;
}

ToolRun check(const std::vector<std::string>& images, const std::string& registryConfig,
              const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"check", "--policy",
                                   FactsFixtures::file("check-policy.yaml").string()};
  if (!registryConfig.empty()) {
    args.insert(args.end(), {"--registry-config", FactsFixtures::file(registryConfig).string()});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), images.begin(), images.end());
  return imagegate(args);
}

/// The JSON report of a `check --output json`, one entry per image.
json checkJson(const std::vector<std::string>& images, const std::string& registryConfig,
               int expectedExit, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--output", "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ToolRun run = check(images, registryConfig, args);
  EXPECT_EQ(run.exitCode, expectedExit) << run.all();
  const json report = run.outJson();
  EXPECT_TRUE(report.is_array() && report.size() == images.size()) << run.all();
  return report.is_array() ? report : json::array();
}

/// The results of `image` in a check report, as "rule: status: message" lines.
std::string describeResults(const json& image) {
  std::string text;
  for (const json& result : image.value("results", json::array())) {
    text += result.value("rule", "") + ": " + result.value("status", "") + ": " +
            result.value("message", "") + "\n";
  }
  return text;
}

std::string statusOf(const json& image, const std::string& rule) {
  for (const json& result : image.value("results", json::array())) {
    if (result.value("rule", "") == rule) return result.value("status", "");
  }
  return "missing";
}

class CheckCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(FactsFixtures::setupError().empty()) << FactsFixtures::setupError();
  }
  static FixtureRegistry& tls() { return FactsFixtures::tls(); }
};

TEST_F(CheckCommand, NonRootImagePasses) {
  const json report = checkJson({tls().ref("STATIC_1")}, "check.yaml", 0);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0]["digest"], tls().pushed("STATIC_1_MANIFEST_DIGEST"));
  EXPECT_EQ(report[0]["user"], "65532:65532");
  EXPECT_EQ(statusOf(report[0], "non-root"), "pass") << describeResults(report[0]);
  EXPECT_EQ(statusOf(report[0], "small"), "pass") << describeResults(report[0]);
  // The table output too, as a person would run it.
  const ToolRun table = check({tls().ref("STATIC_1")}, "check.yaml");
  EXPECT_EQ(table.exitCode, 0) << table.all();
  EXPECT_THAT(table.out, HasSubstr(tls().ref("STATIC_1")));
  EXPECT_THAT(table.out, HasSubstr("user \"65532:65532\""));
}

TEST_F(CheckCommand, RootUserFailsNamingTheUser) {
  const ToolRun root = check({tls().ref("STATIC_ROOT_1")}, "check.yaml");
  EXPECT_EQ(root.exitCode, 1) << root.all();
  EXPECT_THAT(root.out, HasSubstr("fail  image-facts/non-root"));
  EXPECT_THAT(root.out, HasSubstr("USER is \"root\""));

  const json report = checkJson({tls().ref("STATIC_NOUSER_1")}, "check.yaml", 1);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0]["user"], "");
  EXPECT_EQ(statusOf(report[0], "non-root"), "fail") << describeResults(report[0]);
  EXPECT_THAT(describeResults(report[0]), HasSubstr("USER is not set (root)"));
}

TEST_F(CheckCommand, BigImageFailsTheSizeLimit) {
  const json report = checkJson({tls().ref("BIG_1")}, "check.yaml", 1);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0]["compressedSize"], std::stoull(tls().pushed("BIG_1_LAYERS_TOTAL_SIZE")));
  EXPECT_EQ(statusOf(report[0], "small"), "fail") << describeResults(report[0]);
  EXPECT_EQ(statusOf(report[0], "non-root"), "pass") << describeResults(report[0]);
  EXPECT_THAT(describeResults(report[0]), HasSubstr("over the limit of 5Mi"));
}

TEST_F(CheckCommand, PlatformIsPickedFromTheIndex) {
  const json report =
      checkJson({tls().ref("MULTI_1")}, "check.yaml", 0, {"--platform", "linux/arm64"});
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0]["user"], "1000");
  EXPECT_EQ(report[0]["digest"], tls().pushed("MULTI_1_ARM64_MANIFEST_DIGEST"));
  EXPECT_THAT(report[0]["platform"].get<std::string>(), HasSubstr("linux/arm64"));
}

TEST_F(CheckCommand, MissingPlatformListsTheAvailableOnes) {
  const ToolRun run = check({tls().ref("MULTI_1")}, "check.yaml", {"--platform", "linux/s390x"});
  EXPECT_EQ(run.exitCode, 3) << run.all();
  EXPECT_THAT(run.out, HasSubstr("linux/s390x"));
  EXPECT_THAT(run.out, HasSubstr("available: "));
  EXPECT_THAT(run.out, HasSubstr("linux/amd64"));
  EXPECT_THAT(run.out, HasSubstr("linux/arm64"));
}

TEST_F(CheckCommand, UnknownTagCannotBeFetched) {
  const std::string missing = tls().host() + "/test/static:no-such-tag";
  const ToolRun run = check({missing}, "check.yaml");
  EXPECT_EQ(run.exitCode, 3) << run.all();
  EXPECT_THAT(run.out, HasSubstr("fetch failed"));
  EXPECT_THAT(run.out, HasSubstr("no-such-tag"));
}

TEST_F(CheckCommand, WrongPasswordFailsWithoutShowingIt) {
  for (const std::string output : {"table", "json"}) {
    const ToolRun run = check({tls().ref("STATIC_1")}, "check-wrong.yaml", {"--output", output});
    EXPECT_EQ(run.exitCode, 3) << run.all();
    EXPECT_THAT(run.all(), Not(HasSubstr(tls().env("REGISTRY_PASSWORD"))));
    EXPECT_THAT(run.all(), Not(HasSubstr("wrong-")));
    EXPECT_THAT(run.all(), HasSubstr(tls().host()));
  }
}

TEST_F(CheckCommand, PrivateCaWithoutRegistryConfigIsATlsFailure) {
  const ToolRun run = check({tls().ref("STATIC_1")}, "");
  EXPECT_EQ(run.exitCode, 3) << run.all();
  EXPECT_THAT(run.out, HasSubstr("TLS"));
  EXPECT_THAT(run.out, HasSubstr("certificate"));
}

TEST_F(CheckCommand, MalformedRegistryConfigIsAUsageErrorWithItsPosition) {
  const std::string path = FactsFixtures::file("malformed.yaml").string();
  const ToolRun run = check({tls().ref("STATIC_1")}, "malformed.yaml");
  EXPECT_EQ(run.exitCode, 2) << run.all();
  EXPECT_THAT(run.err, HasSubstr(path + ":4:5:"));
  EXPECT_THAT(run.err, HasSubstr("caFlie"));
  EXPECT_EQ(run.out, "");
}

TEST_F(CheckCommand, ZstdAndDockerSchema2Images) {
  const std::vector<std::string> keys = {"STATIC_ZSTD", "STATIC_V2S2", "MULTI_V2S2"};
  std::vector<std::string> refs;
  for (const std::string& key : keys) refs.push_back(tls().ref(key));
  const json report = checkJson(refs, "check.yaml", 0);
  ASSERT_EQ(report.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string digestKey =
        keys[i] == "MULTI_V2S2" ? "MULTI_V2S2_AMD64_MANIFEST_DIGEST" : keys[i] + "_MANIFEST_DIGEST";
    EXPECT_EQ(report[i]["digest"], tls().pushed(digestKey)) << keys[i];
    EXPECT_EQ(report[i]["user"], "65532:65532") << keys[i];
    EXPECT_EQ(statusOf(report[i], "non-root"), "pass") << describeResults(report[i]);
  }
}

TEST_F(CheckCommand, ShellPresetDeniesBusyboxAndPassesTheStaticImage) {
  const ToolRun run =
      imagegate({"check", "--policy", FactsFixtures::file("files-policy.yaml").string(),
                 "--registry-config", FactsFixtures::file("check.yaml").string(), "--output",
                 "json", tls().ref("BUSYBOX_1"), tls().ref("STATIC_1")});
  EXPECT_EQ(run.exitCode, 1) << run.all();
  const json report = run.outJson();
  ASSERT_TRUE(report.is_array() && report.size() == 2u) << run.all();
  EXPECT_EQ(statusOf(report[0], "no-shells"), "fail") << describeResults(report[0]);
  EXPECT_EQ(statusOf(report[1], "no-shells"), "pass") << describeResults(report[1]);
  const json& result = report[0]["results"][0];
  EXPECT_THAT(result.value("message", ""),
              HasSubstr("/bin/sh (layer 1/1, imagegate fixture: COPY busybox"));
  bool foundShell = false;
  for (const json& file : result.value("files", json::array())) {
    if (file.value("path", "") != "/bin/sh") continue;
    foundShell = true;
    EXPECT_EQ(file.value("layerIndex", -1), 0);
    EXPECT_THAT(file.value("layerDigest", ""), HasSubstr("sha256:"));
    EXPECT_THAT(file.value("history", ""), HasSubstr("COPY busybox /bin/busybox"));
  }
  EXPECT_TRUE(foundShell) << result.dump();
}

TEST_F(CheckCommand, TokenRegistryAnonymousPull) {
  const FixtureRegistry& token = FactsFixtures::token();
  const json report = checkJson({token.ref("STATIC_1")}, "token.yaml", 0);
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0]["digest"], token.pushed("STATIC_1_MANIFEST_DIGEST"));
  EXPECT_EQ(report[0]["user"], "65532:65532");
}

// ---------------------------------------------------------------------------------------------
// audit: a kubectl List whose images live in the real registries

json auditPod(const std::string& ns, const std::string& name, const std::string& image,
              const json& owner = nullptr) {
  json metadata = {{"namespace", ns}, {"name", name}, {"uid", "uid-" + name}};
  if (!owner.is_null()) metadata["ownerReferences"] = json::array({owner});
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", metadata},
          {"spec", {{"containers", json::array({{{"name", "app"}, {"image", image}}})}}}};
}

json ownedBy(const std::string& kind, const std::string& name) {
  return {{"apiVersion", "apps/v1"},
          {"kind", kind},
          {"name", name},
          {"uid", "uid-" + name},
          {"controller", true}};
}

/// A workload of `kind` (apps/v1 unless a CronJob) named `name` whose pod runs `image`.
json auditWorkload(const std::string& kind, const std::string& ns, const std::string& name,
                   const std::string& image, const json& owner = nullptr) {
  const json pod = auditPod(ns, name, image);
  json object = {{"apiVersion", kind == "CronJob" ? "batch/v1" : "apps/v1"},
                 {"kind", kind},
                 {"metadata", pod["metadata"]}};
  if (!owner.is_null()) object["metadata"]["ownerReferences"] = json::array({owner});
  const json podTemplate = {{"spec", pod["spec"]}};
  object["spec"] =
      kind == "CronJob"
          ? json{{"schedule", "@daily"}, {"jobTemplate", {{"spec", {{"template", podTemplate}}}}}}
          : json{{"template", podTemplate}};
  return object;
}

class AuditCommand : public CheckCommand {};

TEST_F(AuditCommand, ReportsWhatTheImagesFactsWouldDeny) {
  const std::string unreachable = FactsFixtures::stopped().host() + "/test/static:1";
  const json list = {
      {"apiVersion", "v1"},
      {"kind", "List"},
      {"items",
       {auditWorkload("Deployment", "shop", "api", tls().ref("STATIC_1")),
        auditWorkload("ReplicaSet", "shop", "api-5d8f", tls().ref("STATIC_1"),
                      ownedBy("Deployment", "api")),
        auditPod("shop", "api-5d8f-x2", tls().ref("STATIC_1"), ownedBy("ReplicaSet", "api-5d8f")),
        auditPod("shop", "rooty", tls().ref("STATIC_ROOT_1")),
        auditPod("shop", "gone", unreachable),
        auditWorkload("CronJob", "batch", "big", tls().ref("BIG_1"))}}};
  const fs::path input = FactsFixtures::root() / "audit-list.json";
  writeFile(input, list.dump(2));
  const std::vector<std::string> args = {
      "audit", "--policy", FactsFixtures::file("check-policy.yaml").string(), "--registry-config",
      FactsFixtures::file("check.yaml").string()};

  std::vector<std::string> jsonArgs = args;
  jsonArgs.insert(jsonArgs.end(), {"--output", "json", input.string()});
  const ToolRun run = imagegate(jsonArgs);
  EXPECT_EQ(run.exitCode, 1) << run.all();
  const json report = run.outJson();
  ASSERT_TRUE(report.is_object()) << run.all();
  const json& summary = report["summary"];
  EXPECT_EQ(summary["objects"], 6);
  EXPECT_EQ(summary["workloads"], 4);
  EXPECT_EQ(summary["reportedThroughOwner"], 2);
  EXPECT_EQ(summary["clean"], 1);
  EXPECT_EQ(summary["withDenials"], 3);
  ASSERT_EQ(summary["imagesNotFetched"].size(), 1u) << summary.dump(2);
  EXPECT_EQ(summary["imagesNotFetched"][0]["image"], unreachable);
  std::map<std::string, std::string> verdicts;
  for (const json& w : report["workloads"]) verdicts[w["name"]] = w["verdict"];
  EXPECT_EQ(verdicts, (std::map<std::string, std::string>{
                          {"api", "clean"}, {"rooty", "deny"}, {"gone", "deny"}, {"big", "deny"}}));

  std::vector<std::string> tableArgs = args;
  // Progress as a slow run shows it (at once on a terminal): one stderr line per image.
  tableArgs.insert(tableArgs.end(), {"--progress-after", "0s", "-"});
  const ToolRun table = imagegate(tableArgs, input);
  EXPECT_EQ(table.exitCode, 1) << table.all();
  EXPECT_THAT(table.out, HasSubstr("DENY  shop/Pod/rooty\n  deny  image-facts/non-root  container "
                                   "\"app\" (" +
                                   tls().ref("STATIC_ROOT_1") + ")\n"));
  EXPECT_THAT(table.out, HasSubstr("USER is \"root\""));
  EXPECT_THAT(table.out, HasSubstr("DENY  batch/CronJob/big\n  deny  image-facts/small"));
  EXPECT_THAT(table.out, HasSubstr("Images whose facts could not be fetched (1; "));
  EXPECT_THAT(table.out, HasSubstr("  " + unreachable + ": "));
  EXPECT_THAT(table.out, Not(HasSubstr("shop/Deployment/api")));  // clean
  EXPECT_THAT(table.err, HasSubstr("fetching the facts of 4 images"));
  EXPECT_THAT(table.err, HasSubstr("fetched 4/4 images: "));
  EXPECT_THAT(table.err, HasSubstr(": " + unreachable + " (failed: "));
}

// ---------------------------------------------------------------------------------------------
// serve and review

/// An AdmissionReview for a Pod whose containers set no securityContext, so the images' USER
/// decides runAsNonRoot. `containers` holds (name, image) pairs.
json podReview(const std::string& uid,
               const std::vector<std::pair<std::string, std::string>>& containers,
               const std::string& namespaceName = "shop") {
  return podAdmissionReview(
      {.uid = uid, .containers = podContainers(containers), .namespaceName = namespaceName});
}

struct HttpResult {
  int curlExit = -1;
  int status = 0;
  std::string body;
  std::string log;
  std::chrono::steady_clock::duration elapsed{};

  json response() const {
    const json review = json::parse(body, nullptr, false);
    return review.is_object() && review.contains("response") ? review["response"] : json();
  }
  std::string message() const {
    const json r = response();
    return r.is_object() && r.contains("status") ? r["status"].value("message", "") : "";
  }
  std::string warnings() const {
    const json r = response();
    std::string text;
    if (r.is_object() && r.contains("warnings")) {
      for (const json& warning : r["warnings"]) text += warning.get<std::string>() + "\n";
    }
    return text;
  }
};

class ServeCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!FactsFixtures::setupError().empty()) return;
    try {
      dir_ = FactsFixtures::root() / "serve";
      fs::create_directories(dir_);
      generateCertificates(dir_);
      server_ = std::make_unique<ServerProcess>(startServer(
          {dir_ / "serving.crt", dir_ / "serving.key", FactsFixtures::file("serve-policy.yaml")},
          dir_ / "server.log",
          {"--registry-config", FactsFixtures::file("serve.yaml").string(), "--threads", "2"}));
    } catch (const std::exception& e) {
      setupError_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (server_) {
      server_.reset();  // SIGTERM, then wait
      remember(readFile(dir_ / "server.log"));
    }
  }

  void SetUp() override {
    ASSERT_TRUE(FactsFixtures::setupError().empty()) << FactsFixtures::setupError();
    ASSERT_TRUE(setupError_.empty()) << setupError_;
    ASSERT_TRUE(server_->running()) << "server died:\n" << server_->log();
  }

  static FixtureRegistry& tls() { return FactsFixtures::tls(); }

  static HttpResult curl(const std::vector<std::string>& args) {
    const int id = ++counter_;
    const fs::path body = dir_ / ("curl-" + std::to_string(id) + ".body");
    const fs::path log = dir_ / ("curl-" + std::to_string(id) + ".log");
    std::string command = "curl -sS --max-time 60 --cacert " + shellQuote(dir_ / "ca.crt") +
                          " -o " + shellQuote(body) + " -w '%{http_code}'";
    for (const std::string& arg : args) command += " " + shellQuote(arg);
    command += " 2>" + shellQuote(log);
    const auto started = std::chrono::steady_clock::now();
    const CommandResult run = runCommand(command);
    HttpResult result;
    result.elapsed = std::chrono::steady_clock::now() - started;
    result.curlExit = run.exitCode;
    result.status = std::atoi(run.output.c_str());
    result.body = readFile(body);
    result.log = readFile(log);
    remember(result.body);
    return result;
  }

  static std::string url(const std::string& pathAndQuery) {
    return "https://127.0.0.1:" + std::to_string(server_->port) + pathAndQuery;
  }

  /// Writes `review` to a file (reused by `imagegate review`) and POSTs it to /validate.
  static HttpResult post(const json& review, const std::string& query = "") {
    const fs::path file = reviewFile(review);
    return curl({"-H", "Content-Type: application/json", "--data-binary", "@" + file.string(),
                 url("/validate" + query)});
  }

  static fs::path reviewFile(const json& review) {
    const fs::path file = dir_ / (review["request"]["uid"].get<std::string>() + ".json");
    writeFile(file, review.dump());
    return file;
  }

  /// The finding messages of the server's "admission review" log line for `uid`, waiting for it
  /// (the line may be written just after the answer).
  static std::string loggedFindings(const std::string& uid) {
    const auto until = std::chrono::steady_clock::now() + seconds(10);
    do {
      std::istringstream lines(server_->log());
      for (std::string line; std::getline(lines, line);) {
        const json entry = json::parse(line, nullptr, false);
        if (!entry.is_object() || entry.value("msg", "") != "admission review" ||
            entry.value("uid", "") != uid) {
          continue;
        }
        std::string text;
        for (const json& finding : entry.value("findings", json::array())) {
          text += finding.value("message", "") + "\n";
        }
        return text;
      }
      std::this_thread::sleep_for(milliseconds(50));
    } while (std::chrono::steady_clock::now() < until);
    return "no log line for " + uid + " in:\n" + server_->log();
  }

  static void expectStillServing() {
    const HttpResult health = curl({url("/healthz")});
    EXPECT_EQ(health.status, 200) << health.log;
    EXPECT_EQ(health.body, "ok\n");
    EXPECT_TRUE(server_->running());
  }

  static inline fs::path dir_;
  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::string setupError_;
  static inline std::atomic<int> counter_{0};
};

TEST_F(ServeCommand, DeniesAnImageThatRunsAsRoot) {
  const HttpResult result =
      post(podReview("root-image", {{"app", tls().ref("STATIC_ROOT_1")}}), "?timeout=10s");
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  const json response = result.response();
  EXPECT_EQ(response["uid"], "root-image");
  EXPECT_EQ(response["allowed"], false) << result.body;
  EXPECT_EQ(response["status"]["code"], 403) << result.body;
  EXPECT_THAT(result.message(), HasSubstr("facts-deny"));
  EXPECT_THAT(result.message(), HasSubstr("non-root"));
  EXPECT_THAT(result.message(), HasSubstr("USER is \"root\""));
  EXPECT_THAT(result.message(), HasSubstr("\"app\""));
}

TEST_F(ServeCommand, AllowsANonRootImage) {
  const HttpResult result = post(podReview("non-root-image", {{"app", tls().ref("STATIC_1")}}));
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  EXPECT_EQ(result.response()["uid"], "non-root-image");
  EXPECT_EQ(result.response()["allowed"], true) << result.body;
  EXPECT_EQ(result.warnings(), "");
}

TEST_F(ServeCommand, AnswersAPodWithTenImages) {
  std::vector<std::pair<std::string, std::string>> containers;
  for (std::string key : tls().pushedKeys()) {
    const std::string ref = tls().ref(key);
    for (char& c : key) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    containers.emplace_back(key, ref);
  }
  ASSERT_EQ(containers.size(), 10u);
  const HttpResult result = post(podReview("ten-images", containers), "?timeout=10s");
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  EXPECT_EQ(result.response()["uid"], "ten-images");
  EXPECT_EQ(result.response()["allowed"], false) << result.body;
  // Exactly the root images and the big one are denied: every image was fetched.
  const std::string message = result.message();
  EXPECT_THAT(message, HasSubstr("\"static-root-1\""));
  EXPECT_THAT(message, HasSubstr("\"static-nouser-1\""));
  EXPECT_THAT(message, HasSubstr("\"big-1\""));
  for (const std::string passing : {"static-1", "multi-1", "busybox-1", "static-zstd",
                                    "static-v2s2", "multi-v2s2", "static-arm64-1"}) {
    EXPECT_THAT(message, Not(HasSubstr("\"" + passing + "\""))) << message;
  }
  EXPECT_THAT(message, Not(HasSubstr("cannot fetch")));
  EXPECT_EQ(result.warnings(), "");
}

TEST_F(ServeCommand, UnreachableRegistryWithOnFetchErrorDenyIsDenied) {
  const std::string image = FactsFixtures::stopped().host() + "/deny/app:1";
  const HttpResult result = post(podReview("unreachable-deny", {{"app", image}}));
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  EXPECT_EQ(result.response()["allowed"], false) << result.body;
  EXPECT_EQ(result.response()["status"]["code"], 403) << result.body;
  // The registry client's own error, naming the image and the registry.
  EXPECT_THAT(result.message(),
              HasSubstr("cannot fetch " + image + " from " + FactsFixtures::stopped().host()));
  EXPECT_THAT(result.message(), HasSubstr("facts-deny"));
}

TEST_F(ServeCommand, UnreachableRegistryWithOnFetchErrorAllowWarns) {
  const std::string image = FactsFixtures::stopped().host() + "/allow/app:1";
  const HttpResult result = post(podReview("unreachable-allow", {{"app", image}}));
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  EXPECT_EQ(result.response()["allowed"], true) << result.body;
  // A warning is cut at 119 bytes (kubectl's advice), so it names the rule and the image...
  EXPECT_THAT(result.warnings(), HasSubstr("facts-allow/non-root"));
  EXPECT_THAT(result.warnings(), HasSubstr("not checked: cannot fetch " + image));
  // ...and the server's log line for the review holds the registry error and the reason.
  const std::string findings = loggedFindings("unreachable-allow");
  EXPECT_THAT(findings,
              HasSubstr("cannot fetch " + image + " from " + FactsFixtures::stopped().host()));
  EXPECT_THAT(findings, HasSubstr("allowed by onFetchError: Allow"));
}

TEST_F(ServeCommand, BlackholeRegistryIsAnsweredWithinTheDeadline) {
  const std::string image = FactsFixtures::blackhole().host() + "/test/app:1";
  const HttpResult result = post(podReview("blackhole", {{"app", image}}), "?timeout=3s");
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  // Generous: only "answered, not hanging until the registry timeouts" matters here.
  EXPECT_LT(result.elapsed, seconds(10));
  EXPECT_EQ(result.response()["allowed"], false) << result.body;
  EXPECT_THAT(result.message(), HasSubstr(image));
  EXPECT_THAT(result.message(), HasSubstr("timed out"));
  expectStillServing();
}

TEST_F(ServeCommand, ForbiddenFilesDeniesBusyboxNamingTheFileAndTheLayer) {
  // Namespace "files" is where the files-deny policy applies: its layers are fetched and scanned.
  const HttpResult denied =
      post(podReview("files-busybox", {{"app", tls().ref("BUSYBOX_1")}}, "files"), "?timeout=10s");
  ASSERT_EQ(denied.status, 200) << denied.body << denied.log;
  EXPECT_EQ(denied.response()["allowed"], false) << denied.body;
  EXPECT_THAT(denied.message(), HasSubstr("policy \"files-deny\" rule \"no-shells\""));
  // busybox's /bin/sh -> busybox is a shell, named with its layer and that layer's history line.
  EXPECT_THAT(denied.message(), HasSubstr("/bin/sh (layer 1/1, imagegate fixture: COPY busybox"));

  const HttpResult allowed =
      post(podReview("files-static", {{"app", tls().ref("STATIC_1")}}, "files"), "?timeout=10s");
  ASSERT_EQ(allowed.status, 200) << allowed.body << allowed.log;
  EXPECT_EQ(allowed.response()["allowed"], true) << allowed.body;
  EXPECT_EQ(allowed.warnings(), "");
  expectStillServing();
}

TEST_F(ServeCommand, ReviewCommandGivesTheSameVerdict) {
  const json review = podReview(
      "review-vs-serve", {{"app", tls().ref("STATIC_ROOT_1")}, {"sidecar", tls().ref("STATIC_1")}});
  const HttpResult served = post(review);
  ASSERT_EQ(served.status, 200) << served.body << served.log;
  const ToolRun reviewed = imagegate(
      {"review", "--policy", FactsFixtures::file("serve-policy.yaml").string(), "--registry-config",
       FactsFixtures::file("serve.yaml").string(), reviewFile(review).string()});
  EXPECT_EQ(reviewed.exitCode, 1) << reviewed.all();
  const json answer = reviewed.outJson();
  ASSERT_TRUE(answer.is_object() && answer.contains("response")) << reviewed.all();
  EXPECT_EQ(answer["response"], served.response());
  EXPECT_EQ(answer["response"]["allowed"], false);
  EXPECT_THAT(answer["response"]["status"]["message"].get<std::string>(),
              HasSubstr("USER is \"root\""));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new FactsFixtures);
  return RUN_ALL_TESTS();
}
