// The image-facts and layer caches of the real `imagegate serve`, counted where it matters: in
// the real docker-registry's own access log (tests/fixtures/registry, TLS + Basic auth).
//  - 200 simultaneous reviews of a new 5-layer image with a rule on its files cause one manifest
//    GET, one config GET and one GET per layer;
//  - a server restarted on the same cache directory asks the registry nothing for that image;
//  - two servers sharing a real redis-server: a layer scanned by one is never fetched by the
//    other, and a Redis killed mid-way costs no review.
// Each test pushes images of its own (fresh layer content), so nothing is cached before it runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "registry/digest.h"
#include "testutil/admission_review.h"
#include "testutil/certificates.h"
#include "testutil/layer_builder.h"
#include "testutil/redis_server.h"
#include "testutil/registry_push.h"
#include "testutil/server_process.h"
#include "testutil/shell.h"
#include "testutil/tls_client.h"

namespace imagegate::testutil {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kFixtures = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/fixtures/registry";
constexpr int kLayers = 5;
constexpr int kConcurrentReviews = 200;

constexpr const char* kPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: image-files
spec:
  action: Enforce
  onFetchError: Deny
  rules:
    - name: no-shells
      forbiddenFiles: {presets: [shells]}
)";

struct PushedImage : PushedTestImage {
  std::string pinnedRef;  ///< HOST/test/burst@sha256:...
};

/// What the registry's access log says about one repository since a point in the log.
struct AccessCounts {
  int manifestGets = 0;                  ///< 2xx
  int configGets = 0;                    ///< 2xx
  std::map<std::string, int> layerGets;  ///< 2xx, by digest
  int layerGetsTotal = 0;
  int heads = 0;
  int challenges = 0;  ///< 401 answers (Basic auth asked for), any method
  int other = 0;       ///< any other line for the repository

  int total() const {
    return manifestGets + configGets + layerGetsTotal + heads + challenges + other;
  }
  std::string describe() const {
    return "manifest GETs " + std::to_string(manifestGets) + ", config GETs " +
           std::to_string(configGets) + ", layer GETs " + std::to_string(layerGetsTotal) +
           ", HEADs " + std::to_string(heads) + ", 401 challenges " + std::to_string(challenges) +
           ", other " + std::to_string(other);
  }
};

class CacheIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = makeServeDir("cache-it", kPolicy);
      registry_ = startTlsBasicRegistry(kFixtures, dir_);
      const std::string auth =
          base64(get(registry_, "REGISTRY_USER") + ":" + get(registry_, "REGISTRY_PASSWORD"));
      writeFile(dir_ / "docker-config.json", json{{"auths", {{host(), {{"auth", auth}}}}}}.dump());
    } catch (const std::exception& e) {
      setupError_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (!registry_.empty()) {
      stopTlsBasicRegistry(kFixtures, dir_);
    }
    removeTestDir(dir_);
  }

  void SetUp() override {
    if (!setupError_.empty()) GTEST_FAIL() << setupError_;
  }

  static std::string host() { return get(registry_, "REGISTRY_HOST"); }

  static std::string base64(const std::string& text) {
    static const char* alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < text.size(); i += 3) {
      const unsigned n = (static_cast<unsigned char>(text[i]) << 16) |
                         (static_cast<unsigned char>(text[i + 1]) << 8) |
                         static_cast<unsigned char>(text[i + 2]);
      for (int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
    }
    if (i < text.size()) {
      unsigned n = static_cast<unsigned char>(text[i]) << 16;
      if (i + 1 < text.size()) n |= static_cast<unsigned char>(text[i + 1]) << 8;
      out += alphabet[(n >> 18) & 63];
      out += alphabet[(n >> 12) & 63];
      out += i + 1 < text.size() ? alphabet[(n >> 6) & 63] : '=';
      out += '=';
    }
    return out;
  }

  /// A new image of kLayers gzip layers (content unique to `repository`, no shells) with a
  /// config and an OCI manifest, pushed as REPOSITORY:1.
  static PushedImage pushImage(const std::string& repository) {
    std::vector<TestLayer> layers;
    for (int i = 0; i < kLayers; ++i) {
      TarBuilder tar;
      tar.dir("opt").dir("opt/" + std::to_string(i));
      for (int f = 0; f < 20; ++f) {
        tar.file("opt/" + std::to_string(i) + "/file-" + std::to_string(f),
                 repository + " layer " + std::to_string(i) + " file " + std::to_string(f));
      }
      layers.emplace_back(gzipCompress(tar.tar()), "application/vnd.oci.image.layer.v1.tar+gzip",
                          "COPY layer " + std::to_string(i));
    }
    PushedImage image{RegistryPusher(registry_, dir_ / "push").push(repository, layers), {}};
    image.pinnedRef = host() + "/" + repository + "@" + image.manifestDigest;
    return image;
  }

  static std::size_t registryLogSize() { return readFile(get(registry_, "REGISTRY_LOG")).size(); }

  /// The access-log lines about `image`'s repository written after `offset`.
  static AccessCounts countAccess(const PushedImage& image, std::size_t offset) {
    const std::string log = readFile(get(registry_, "REGISTRY_LOG")).substr(offset);
    // docker-registry's access log (combined format):
    //   127.0.0.1 - - [date] "GET /v2/test/x/blobs/sha256:... HTTP/1.1" 200 123 "" "agent"
    static const std::regex line(R"re("([A-Z]+) /v2/([^ ]+) HTTP/[0-9.]+" ([0-9]{3}) )re");
    AccessCounts counts;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
         ++it) {
      const std::string method = (*it)[1];
      const std::string path = (*it)[2];
      const int status = std::stoi((*it)[3]);
      if (!path.starts_with(image.repository + "/")) continue;
      const std::string rest = path.substr(image.repository.size() + 1);
      const bool ok = status >= 200 && status < 300;
      if (status == 401) {
        ++counts.challenges;
      } else if (method == "HEAD") {
        ++counts.heads;
      } else if (method == "GET" && ok && rest.starts_with("manifests/")) {
        ++counts.manifestGets;
      } else if (method == "GET" && ok && rest == "blobs/" + image.configDigest) {
        ++counts.configGets;
      } else if (method == "GET" && ok && rest.starts_with("blobs/")) {
        ++counts.layerGets[rest.substr(6)];
        ++counts.layerGetsTotal;
      } else {
        ++counts.other;
      }
    }
    return counts;
  }

  /// A registry config for the server: this registry's CA and credentials, plus `cacheYaml`.
  static fs::path registryConfig(const std::string& name, const std::string& cacheYaml) {
    const fs::path path = dir_ / (name + "-registries.yaml");
    writeFile(path, "dockerConfig: " + (dir_ / "docker-config.json").string() +
                        "\nregistries:\n  - host: \"" + host() +
                        "\"\n    caFile: " + get(registry_, "REGISTRY_CA") + "\n" + cacheYaml);
    return path;
  }

  static ServerProcess serve(const std::string& name, const std::string& cacheYaml = "") {
    return startServer(dir_, name,
                       {"--registry-config", registryConfig(name, cacheYaml).string(),
                        "--first-request-timeout", "60s", "--review-threads", "256"});
  }

  static std::string reviewRequest(const std::string& image, const std::string& uid) {
    const json review = podAdmissionReview({.uid = uid,
                                            .containers = podContainers({{"web", image}}),
                                            .podName = "web-" + uid,
                                            .namespaceName = "default",
                                            .username = "replicaset-controller"});
    return validateRequest(review.dump(), "?timeout=30s");
  }

  static json review(const ServerProcess& server, const std::string& image,
                     const std::string& uid) {
    TlsClient client(server.port, dir_ / "ca.crt", std::chrono::seconds(30));
    if (!client.send(reviewRequest(image, uid))) return {{"error", "send failed"}};
    return reviewResponseOf(client.readResponse());
  }

  static void expectAllowed(const json& response, const std::string& what) {
    EXPECT_EQ(response.value("allowed", false), true) << what << ": " << response.dump();
  }

  static inline fs::path dir_;
  static inline Env registry_;
  static inline std::string setupError_;
};

TEST_F(CacheIntegrationTest, TwoHundredSimultaneousReviewsOfANewImageFetchEachBlobOnce) {
  const PushedImage image = pushImage("test/burst");
  const ServerProcess server = serve("burst");
  const std::size_t logStart = registryLogSize();

  // Every connection is made (TLS handshake done) before any request leaves, then all go at once.
  std::vector<std::unique_ptr<TlsClient>> clients(kConcurrentReviews);
  std::vector<json> responses(kConcurrentReviews);
  std::mutex mutex;
  std::condition_variable go;
  bool released = false;
  std::atomic<int> connected{0};
  std::vector<std::thread> reviewers;
  for (int i = 0; i < kConcurrentReviews; ++i) {
    reviewers.emplace_back([&, i] {
      try {
        clients[i] =
            std::make_unique<TlsClient>(server.port, dir_ / "ca.crt", std::chrono::seconds(60));
      } catch (const std::exception& e) {
        responses[i] = {{"error", e.what()}};
      }
      const std::string request = reviewRequest(image.tagRef, "uid-" + std::to_string(i));
      ++connected;
      std::unique_lock<std::mutex> lock(mutex);
      go.wait(lock, [&] { return released; });
      lock.unlock();
      if (!clients[i]) return;
      if (!clients[i]->send(request)) {
        responses[i] = {{"error", "send failed"}};
        return;
      }
      responses[i] = reviewResponseOf(clients[i]->readResponse());
    });
  }
  ASSERT_TRUE(waitFor([&] { return connected.load() == kConcurrentReviews; }, seconds(120)));
  {
    std::lock_guard<std::mutex> lock(mutex);
    released = true;
  }
  go.notify_all();
  for (std::thread& reviewer : reviewers) reviewer.join();
  for (int i = 0; i < kConcurrentReviews; ++i) {
    expectAllowed(responses[i], "review " + std::to_string(i));
  }

  const AccessCounts counts = countAccess(image, logStart);
  std::cout << "[ registry ] " << kConcurrentReviews << " reviews: " << counts.describe() << "\n";
  EXPECT_EQ(counts.manifestGets, 1) << counts.describe();
  EXPECT_EQ(counts.configGets, 1) << counts.describe();
  EXPECT_EQ(counts.layerGetsTotal, kLayers) << counts.describe();
  for (const std::string& layer : image.layerDigests) {
    EXPECT_EQ(counts.layerGets.count(layer) ? counts.layerGets.at(layer) : 0, 1) << layer;
  }
  EXPECT_EQ(counts.heads, 0) << counts.describe();
  EXPECT_EQ(counts.other, 0) << counts.describe();
  // The Basic challenge is answered once per process: later requests send credentials upfront.
  EXPECT_LE(counts.challenges, 1) << counts.describe();
}

TEST_F(CacheIntegrationTest, RestartedServerOnTheSameCacheDirectoryAsksTheRegistryNothing) {
  const PushedImage image = pushImage("test/restart");
  const std::string cacheYaml = "cache:\n  dir: " + (dir_ / "cache-dir").string() + "\n";
  {
    ServerProcess first = serve("restart-first", cacheYaml);
    const std::size_t before = registryLogSize();
    expectAllowed(review(first, image.pinnedRef, "first"), "first server");
    const AccessCounts counts = countAccess(image, before);
    EXPECT_EQ(counts.layerGetsTotal, kLayers) << counts.describe();
    first.child->signal(SIGTERM);
    ASSERT_TRUE(first.child->waitExit(seconds(30)).has_value());
  }
  const std::size_t before = registryLogSize();
  ServerProcess second = serve("restart-second", cacheYaml);
  expectAllowed(review(second, image.pinnedRef, "second"), "restarted server");
  const AccessCounts counts = countAccess(image, before);
  std::cout << "[ registry ] restarted server: " << counts.describe() << "\n";
  EXPECT_EQ(counts.total(), 0) << counts.describe();
}

TEST_F(CacheIntegrationTest, ServersSharingRedisNeverFetchALayerTheOtherScanned) {
  const PushedImage image = pushImage("test/shared");
  RedisServer redis(dir_ / "redis-shared");
  const std::string cacheYaml = "cache:\n  redis:\n    address: " + redis.address() + "\n";
  ServerProcess first = serve("shared-first", cacheYaml);
  ServerProcess second = serve("shared-second", cacheYaml);
  const std::size_t start = registryLogSize();
  expectAllowed(review(first, image.tagRef, "first-tag"), "first server, by tag");
  expectAllowed(review(first, image.pinnedRef, "first-pinned"), "first server, by digest");
  const AccessCounts byFirst = countAccess(image, start);
  EXPECT_EQ(byFirst.layerGetsTotal, kLayers) << byFirst.describe();

  // By digest: facts and layer indexes all come from Redis.
  std::size_t before = registryLogSize();
  expectAllowed(review(second, image.pinnedRef, "second-pinned"), "second server, by digest");
  const AccessCounts pinned = countAccess(image, before);
  std::cout << "[ registry ] second server, by digest: " << pinned.describe() << "\n";
  EXPECT_EQ(pinned.total(), 0) << pinned.describe();

  // By tag: each replica resolves the tag itself (tags move), but no layer is fetched again.
  before = registryLogSize();
  expectAllowed(review(second, image.tagRef, "second-tag"), "second server, by tag");
  const AccessCounts tagged = countAccess(image, before);
  std::cout << "[ registry ] second server, by tag: " << tagged.describe() << "\n";
  EXPECT_EQ(tagged.layerGetsTotal, 0) << tagged.describe();
  EXPECT_EQ(tagged.manifestGets, 1) << tagged.describe();
  EXPECT_EQ(tagged.configGets, 1) << tagged.describe();
}

TEST_F(CacheIntegrationTest, RedisKilledMidWayCostsNoReview) {
  const PushedImage before = pushImage("test/redis-before");
  const PushedImage after = pushImage("test/redis-after");
  const PushedImage slow = pushImage("test/redis-slow");
  auto redis = std::make_unique<RedisServer>(dir_ / "redis-killed");
  const std::string cacheYaml =
      "cache:\n  redis:\n    address: " + redis->address() + "\n    timeout: 100ms\n";
  ServerProcess server = serve("redis-killed", cacheYaml);
  expectAllowed(review(server, before.tagRef, "before"), "with Redis up");
  // A Redis that accepts connections and never answers costs one timeout, not the review.
  redis->pause();
  expectAllowed(review(server, slow.pinnedRef, "slow"), "with Redis not answering");
  redis->resume();
  redis->kill();
  expectAllowed(review(server, after.tagRef, "after-1"), "a new image with Redis gone");
  expectAllowed(review(server, after.pinnedRef, "after-2"), "a pinned image with Redis gone");
  expectAllowed(review(server, before.tagRef, "before-again"), "a cached image with Redis gone");
  EXPECT_TRUE(server.running());
  EXPECT_THAT(server.log(), HasSubstr("redis cache unusable"));
}

}  // namespace
}  // namespace imagegate::testutil
