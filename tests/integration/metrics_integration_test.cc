// GET /metrics on the real `imagegate serve`, scraped over TLS (curl, verifying the test CA) and
// read with the Prometheus client library's own parser (tests/integration/prometheus_parse.py,
// /usr/bin/python3 with Debian's python3-prometheus-client): the exposition parses, and the
// review counters move by exactly the reviews sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "testutil/server_process.h"
#include "testutil/shell.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using namespace imagegate::testutil;  // NOLINT: test helpers

const fs::path kSourceDir = IMAGEGATE_SOURCE_DIR;
const fs::path kDataDir = kSourceDir / "tests/data/admission";

constexpr const char* kPolicies = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: test-enforce
spec:
  action: Enforce
  rules:
    - name: no-privileged
      privileged:
        allowed: false
)";

/// One scrape, parsed: sample values by name and labels.
struct Scrape {
  std::map<std::string, std::string> families;  ///< name -> type, as the parser saw them
  json samples;

  /// The value of the sample with this name and exactly these labels; 0 when absent (a labelled
  /// series appears only once something happened).
  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const json& sample : samples) {
      if (sample["name"] == name &&
          sample["labels"].get<std::map<std::string, std::string>>() == labels) {
        return sample["value"].get<double>();
      }
    }
    return 0;
  }
};

class MetricsIntegrationTest : public ServeSuite {
 protected:
  static void SetUpTestSuite() { startSuite("metrics-test", kPolicies, {"--threads", "2"}); }

  /// curl over TLS, verifying the server against the test CA; returns the HTTP status.
  static int curl(const std::vector<std::string>& args, const fs::path& body,
                  const fs::path& headers) {
    std::string command = "curl -sS --max-time 30 --cacert " + shellQuote(dir_ / "ca.crt") +
                          " -o " + shellQuote(body) + " -D " + shellQuote(headers) +
                          " -w '%{http_code}'";
    for (const std::string& arg : args) command += " " + shellQuote(arg);
    const fs::path log = body.string() + ".curl.log";
    const CommandResult run = runCommand(command + " 2>" + shellQuote(log));
    if (run.exitCode != 0) ADD_FAILURE() << "curl failed: " << readFile(log);
    return run.exitCode == 0 ? std::atoi(run.output.c_str()) : -1;
  }

  static std::string url(const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(server_->port) + path;
  }

  static int postReview(const fs::path& file) {
    const std::string id = std::to_string(++counter_);
    return curl({"-H", "Content-Type: application/json", "--data-binary", "@" + file.string(),
                 url("/validate")},
                dir_ / ("review-" + id + ".json"), dir_ / ("review-" + id + ".headers"));
  }

  /// Scrapes /metrics and parses it with the Prometheus parser; fails the test when either fails.
  static Scrape scrape(std::string* rawText = nullptr, std::string* rawHeaders = nullptr) {
    const std::string id = std::to_string(++counter_);
    const fs::path body = dir_ / ("metrics-" + id + ".txt");
    const fs::path headers = dir_ / ("metrics-" + id + ".headers");
    const int status = curl({url("/metrics")}, body, headers);
    EXPECT_EQ(status, 200);
    if (rawText) *rawText = readFile(body);
    if (rawHeaders) *rawHeaders = readFile(headers);
    const fs::path parsed = dir_ / ("metrics-" + id + ".json");
    const fs::path errors = dir_ / ("metrics-" + id + ".err");
    const CommandResult run = runCommand(
        "/usr/bin/python3 " + shellQuote(kSourceDir / "tests/integration/prometheus_parse.py") +
        " " + shellQuote(body) + " >" + shellQuote(parsed) + " 2>" + shellQuote(errors));
    EXPECT_EQ(run.exitCode, 0) << readFile(errors) << "\n" << readFile(body);
    Scrape scrape;
    const json result = json::parse(readFile(parsed), nullptr, false);
    if (!result.is_object()) {
      ADD_FAILURE() << "parser printed no JSON: " << readFile(errors);
      return scrape;
    }
    scrape.families = result["families"].get<std::map<std::string, std::string>>();
    scrape.samples = result["samples"];
    return scrape;
  }

  static inline int counter_ = 0;
};

TEST_F(MetricsIntegrationTest, ExpositionParsesWithThePrometheusParser) {
  std::string text;
  std::string headers;
  const Scrape scrape = this->scrape(&text, &headers);
  EXPECT_THAT(headers, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  // Every family is declared from the start, with its type.
  EXPECT_EQ(scrape.families.at("imagegate_reviews"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_review_duration_seconds"), "histogram");
  EXPECT_EQ(scrape.families.at("imagegate_violations"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_registry_requests"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_registry_request_duration_seconds"), "histogram");
  EXPECT_EQ(scrape.families.at("imagegate_registry_fetch_errors"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_image_fetch_failures"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_layers_scanned"), "counter");
  EXPECT_EQ(scrape.families.at("imagegate_layer_scan_duration_seconds"), "histogram");
  EXPECT_EQ(scrape.families.at("imagegate_build_info"), "gauge");
  EXPECT_EQ(scrape.value("imagegate_build_info", {{"version", "0.1.0"}}), 1);
  EXPECT_GT(scrape.value("imagegate_process_start_time_seconds", {}), 1.7e9);
  // Reload counters exist before any reload, at 0.
  EXPECT_EQ(scrape.families.at("imagegate_reloads"), "counter");
  EXPECT_THAT(text, HasSubstr("imagegate_reloads_total{what=\"policy\",result=\"failure\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("imagegate_reloads_total{what=\"certificate\",result=\"success\"} 0\n"));
  // The caches report themselves through a collector: facts and layer indexes in memory.
  EXPECT_EQ(scrape.families.at("imagegate_cache_entries"), "gauge");
  EXPECT_EQ(scrape.families.at("imagegate_cache_hits"), "counter");
  EXPECT_THAT(text, HasSubstr("imagegate_cache_bytes{cache=\"facts\"} "));
  EXPECT_THAT(text, HasSubstr("imagegate_cache_misses_total{cache=\"layer_index\"} "));
}

TEST_F(MetricsIntegrationTest, ReviewCountersMoveByExactlyTheReviewsSent) {
  const Scrape before = scrape();
  constexpr int kAllowed = 3;
  constexpr int kDenied = 2;
  for (int i = 0; i < kAllowed; ++i) ASSERT_EQ(postReview(kDataDir / "pod-allow.json"), 200);
  for (int i = 0; i < kDenied; ++i) ASSERT_EQ(postReview(kDataDir / "pod-deny.json"), 200);
  const fs::path notAReview = dir_ / "not-a-review.json";
  writeFile(notAReview, "{\"kind\": \"Nope\"}");
  ASSERT_EQ(postReview(notAReview), 400);
  const Scrape after = scrape();

  const auto delta = [&](const std::string& name, const std::map<std::string, std::string>& l) {
    return after.value(name, l) - before.value(name, l);
  };
  EXPECT_EQ(delta("imagegate_reviews_total",
                  {{"kind", "Pod"}, {"operation", "CREATE"}, {"verdict", "allowed"}}),
            kAllowed);
  EXPECT_EQ(delta("imagegate_reviews_total",
                  {{"kind", "Pod"}, {"operation", "CREATE"}, {"verdict", "denied"}}),
            kDenied);
  EXPECT_EQ(delta("imagegate_reviews_total",
                  {{"kind", "unknown"}, {"operation", "unknown"}, {"verdict", "error"}}),
            1);
  EXPECT_EQ(delta("imagegate_review_duration_seconds_count", {}), kAllowed + kDenied + 1);
  EXPECT_EQ(delta("imagegate_review_duration_seconds_bucket", {{"le", "+Inf"}}),
            kAllowed + kDenied + 1);
  // pod-deny.json has one privileged container ("sidecar"); pod-allow.json none.
  EXPECT_EQ(delta("imagegate_violations_total", {{"policy", "test-enforce"},
                                                 {"rule", "no-privileged"},
                                                 {"action", "Enforce"},
                                                 {"status", "fail"}}),
            kDenied);
  EXPECT_EQ(
      delta("imagegate_policy_evaluations_total", {{"policy", "test-enforce"}, {"result", "pass"}}),
      kAllowed);
  EXPECT_EQ(
      delta("imagegate_policy_evaluations_total", {{"policy", "test-enforce"}, {"result", "fail"}}),
      kDenied);
}

TEST_F(MetricsIntegrationTest, MetricsIsGetOnly) {
  const std::string id = std::to_string(++counter_);
  EXPECT_EQ(curl({"-X", "POST", "--data", "x", url("/metrics")}, dir_ / ("post-" + id),
                 dir_ / ("post-" + id + ".headers")),
            405);
}

}  // namespace
