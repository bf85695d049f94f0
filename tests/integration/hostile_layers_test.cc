// Hostile layers end to end: each pushed to the real docker-registry (tests/fixtures/registry,
// TLS + Basic auth) in an image of its own, and a Pod with that image reviewed by the real
// `imagegate serve` under a file rule with onFetchError: Deny. Each answer must come within the
// review's budget, deny and name the layer and its problem; while it is being worked out and
// after it, the server answers /healthz and a review of a clean image. The gzip bomb is watched
// for the server's memory. (The scanner's own unit tests: tests/unit/layers/.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "testutil/admission_review.h"
#include "testutil/certificates.h"
#include "testutil/layer_builder.h"
#include "testutil/registry_push.h"
#include "testutil/server_process.h"
#include "testutil/shell.h"
#include "testutil/tls_client.h"

namespace imagegate::testutil {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

const fs::path kFixtures = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/fixtures/registry";

// The server's limits (registry config `layers:`), small enough that the hostile layers reach
// them in a fraction of a second.
constexpr std::uint64_t kMaxUncompressed = std::uint64_t{256} << 20;
constexpr int kMaxEntries = 12'000;  // above the 10,000 copies of one path
// The review's own deadline, and how long the test waits for an answer (generous: liveness, not
// speed).
constexpr const char* kReviewTimeout = "10s";
constexpr auto kAnswerBudget = std::chrono::seconds(12);
// The bomb inflates to 8x the limit; the server may hold its chunks in flight, never the layer.
constexpr std::uint64_t kBombBytes = std::uint64_t{2} << 30;
constexpr std::size_t kRssGrowthLimit = std::size_t{128} << 20;

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

/// A ustar header block for a member of `size` bytes (no data follows here).
std::string ustarHeader(const std::string& name, std::uint64_t size, char type = '0') {
  std::string block(512, '\0');
  const auto put = [&](std::size_t offset, const std::string& text) {
    std::memcpy(block.data() + offset, text.data(), text.size());
  };
  const auto octal = [](std::uint64_t value, int width) {
    char text[32];
    std::snprintf(text, sizeof text, "%0*llo", width, static_cast<unsigned long long>(value));
    return std::string(text);
  };
  put(0, name.substr(0, 100));
  put(100, octal(0644, 7));
  put(108, octal(0, 7));
  put(116, octal(0, 7));
  put(124, octal(size, 11));
  put(136, octal(1700000000, 11));
  put(148, "        ");  // the checksum counts its own field as spaces
  block[156] = type;
  put(257, std::string("ustar\0"
                       "00",
                       8));
  unsigned sum = 0;
  for (const char c : block) sum += static_cast<unsigned char>(c);
  put(148, octal(sum, 6));
  block[154] = '\0';
  block[155] = ' ';
  return block;
}

/// A gzip bomb: one member holding a tar header for a file of `total` bytes and the first MiB of
/// its zeros, then one identical ~1 KiB member per further MiB of zeros (a blob may hold several
/// gzip members back to back). `total` bytes uncompressed from ~total/1000 compressed.
std::string gzipBomb(std::uint64_t total) {
  constexpr std::size_t kMiB = 1 << 20;
  std::string first = ustarHeader("data/zeros.bin", total);
  first.resize(kMiB, '\0');
  std::string blob = gzipCompress(first, 9);
  const std::string more = gzipCompress(std::string(kMiB, '\0'), 9);
  for (std::uint64_t done = kMiB; done < total; done += kMiB) blob += more;
  return blob;
}

/// A small valid layer without shells.
std::string cleanTar(const std::string& tag) {
  TarBuilder tar;
  tar.dir("app").file("app/server", "#!not a shell " + tag, 0755).file("app/config", tag);
  return tar.tar();
}

class HostileLayersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      dir_ = makeServeDir("hostile-layers", kPolicy);
      registry_ = startTlsBasicRegistry(kFixtures, dir_);
      pusher_ = std::make_unique<RegistryPusher>(registry_, dir_ / "push");
      const std::string host = pusher_->host();
      writeFile(dir_ / "docker-config.json",
                json{{"auths",
                      {{host,
                        {{"username", get(registry_, "REGISTRY_USER")},
                         {"password", get(registry_, "REGISTRY_PASSWORD")}}}}}}
                    .dump());
      writeFile(dir_ / "registries.yaml",
                "dockerConfig: " + (dir_ / "docker-config.json").string() +
                    "\nregistries:\n  - host: \"" + host +
                    "\"\n    caFile: " + get(registry_, "REGISTRY_CA") +
                    "\nlayers:\n  maxUncompressed: " + std::to_string(kMaxUncompressed >> 20) +
                    "Mi\n  maxEntries: " + std::to_string(kMaxEntries) + "\n");
      clean_ = pusher_->push("test/clean", {{gzipCompress(cleanTar("clean"))}}).tagRef;
      server_ = std::make_unique<ServerProcess>(
          startServer(dir_, "serve",
                      {"--registry-config", (dir_ / "registries.yaml").string(),
                       "--first-request-timeout", "60s"}));
    } catch (const std::exception& e) {
      setupError_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    server_.reset();
    if (!registry_.empty()) {
      stopTlsBasicRegistry(kFixtures, dir_);
    }
    removeTestDir(dir_);
  }

  void SetUp() override {
    if (!setupError_.empty()) GTEST_FAIL() << setupError_;
  }

  static std::string reviewRequest(const std::string& image, const std::string& uid) {
    const json review = podAdmissionReview({.uid = uid,
                                            .containers = podContainers({{"web", image}}),
                                            .podName = "web",
                                            .namespaceName = "default",
                                            .username = "replicaset-controller"});
    return validateRequest(review.dump(), std::string("?timeout=") + kReviewTimeout);
  }

  struct Answer {
    json response;  ///< The AdmissionReview's response, or {"error": ...}.
    Clock::duration took{};
  };

  static Answer review(const std::string& image, const std::string& uid) {
    const auto started = Clock::now();
    Answer answer;
    try {
      TlsClient client(server_->port, dir_ / "ca.crt", kAnswerBudget);
      if (!client.send(reviewRequest(image, uid))) {
        answer.response = {{"error", "send failed"}};
      } else {
        answer.response = reviewResponseOf(client.readResponse());
      }
    } catch (const std::exception& e) {
      answer.response = {{"error", e.what()}};
    }
    answer.took = Clock::now() - started;
    return answer;
  }

  static std::string messageOf(const json& response) {
    return response.contains("status") ? response["status"].value("message", "") : response.dump();
  }

  static bool healthy() {
    try {
      TlsClient client(server_->port, dir_ / "ca.crt", std::chrono::seconds(5));
      return client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n") &&
             client.readResponse().starts_with("HTTP/1.1 200");
    } catch (const std::exception&) {
      return false;
    }
  }

  /// The server is alive and judges a clean image as before.
  static void expectServing(const std::string& when) {
    EXPECT_TRUE(healthy()) << "/healthz " << when;
    const Answer clean = review(clean_, "clean");
    EXPECT_EQ(clean.response.value("allowed", false), true)
        << "clean review " << when << ": " << clean.response.dump();
  }

  /// Reviews `image` while /healthz and a clean review are answered beside it, then checks the
  /// server again; returns the hostile image's answer after checking it is a timely deny.
  static Answer reviewHostile(const PushedTestImage& image) {
    std::future<Answer> hostile =
        std::async(std::launch::async, [&] { return review(image.tagRef, "hostile"); });
    expectServing("while a hostile layer is being reviewed");
    const Answer answer = hostile.get();
    EXPECT_LT(answer.took, kAnswerBudget) << image.tagRef;
    EXPECT_EQ(answer.response.value("allowed", true), false) << answer.response.dump();
    expectServing("after a hostile layer");
    EXPECT_TRUE(server_->running()) << server_->log();
    return answer;
  }

  static PushedTestImage pushGzip(const std::string& repository, const std::string& tar,
                                  const std::string& createdBy = "COPY . /") {
    return pusher_->push(repository, {{gzipCompress(tar),
                                       "application/vnd.oci.image.layer.v1.tar+gzip", createdBy}});
  }

  static inline fs::path dir_;
  static inline Env registry_;
  static inline std::unique_ptr<RegistryPusher> pusher_;
  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::string clean_;
  static inline std::string setupError_;
};

TEST_F(HostileLayersTest, GzipBombStopsAtTheUncompressedLimitWithBoundedMemory) {
  const PushedTestImage image = pusher_->push(
      "test/bomb", {{gzipBomb(kBombBytes), "application/vnd.oci.image.layer.v1.tar+gzip",
                     "RUN dd if=/dev/zero of=/data/zeros.bin"}});
  const int pid = server_->child->pid();
  ASSERT_TRUE(healthy());
  const std::size_t idle = residentBytes(pid);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> peak{idle};
  std::thread watcher([&] {
    while (!done) {
      peak = std::max(peak.load(), residentBytes(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const Answer answer = reviewHostile(image);
  done = true;
  watcher.join();
  EXPECT_THAT(messageOf(answer.response),
              AllOf(HasSubstr("layer 1/1"), HasSubstr("larger than 256 MiB uncompressed"),
                    HasSubstr("maxUncompressedBytes"), HasSubstr("compression bomb")));
  RecordProperty("rss_idle_mib", std::to_string(idle >> 20));
  RecordProperty("rss_peak_mib", std::to_string(peak >> 20));
  EXPECT_LT(peak - idle, kRssGrowthLimit)
      << "RSS grew from " << (idle >> 20) << " MiB to " << (peak >> 20) << " MiB";
}

TEST_F(HostileLayersTest, TruncatedGzipStreamIsAnError) {
  TarBuilder tar;
  for (int i = 0; i < 200; ++i) {
    tar.file("usr/share/data/file-" + std::to_string(i), std::string(3000, 'a' + i % 26));
  }
  std::string blob = gzipCompress(tar.tar());
  blob.resize(blob.size() * 6 / 10);  // the registry serves the cut blob under its own digest
  const PushedTestImage image = pusher_->push("test/truncated", {{blob}});
  EXPECT_THAT(messageOf(reviewHostile(image).response),
              AllOf(HasSubstr("layer 1/1"), HasSubstr("gzip stream is truncated")));
}

TEST_F(HostileLayersTest, CorruptTarHeaderIsAnError) {
  TarBuilder builder(TarBuilder::Format::kUstar);
  builder.file("etc/first", "one").file("etc/second", "two").file("etc/third", "three");
  std::string tar = builder.tar();
  // The second member's header starts after the first's header and its one data block.
  tar[1024 + 148] ^= 0x07;  // its checksum no longer adds up
  const PushedTestImage image = pushGzip("test/corrupt-header", tar);
  EXPECT_THAT(messageOf(reviewHostile(image).response),
              AllOf(HasSubstr("layer 1/1"), HasSubstr("layer tar is corrupt at member 2")));
}

TEST_F(HostileLayersTest, BlobThatIsNotTheOneItsDigestNamesIsNeverJudged) {
  // Uncompressed, so that the swapped blob is a valid layer of the same size: only the digest
  // tells them apart. The swapped one holds a shell; the answer must be about the digest.
  TarBuilder pushed(TarBuilder::Format::kUstar);
  pushed.file("bin/ok", "#!");
  TarBuilder swapped(TarBuilder::Format::kUstar);
  swapped.file("bin/sh", "#!");
  const std::string blob = pushed.tar();
  const std::string other = swapped.tar();
  ASSERT_EQ(blob.size(), other.size());
  const PushedTestImage image =
      pusher_->push("test/digest-mismatch", {{blob, "application/vnd.oci.image.layer.v1.tar"}});
  // docker-registry checks a blob's digest when it is pushed, not when it is served: swapping
  // the stored bytes is what a corrupted disk or a tampering mirror does.
  const fs::path stored = pusher_->storedBlobPath(image.layerDigests[0]);
  ASSERT_EQ(readFile(stored), blob) << stored;
  writeFile(stored, other);
  const std::string message = messageOf(reviewHostile(image).response);
  EXPECT_THAT(message, AllOf(HasSubstr("layer 1/1"), HasSubstr("layer blob digest mismatch"),
                             HasSubstr("expected " + image.layerDigests[0])));
  EXPECT_THAT(message, Not(HasSubstr("/bin/sh")));
}

TEST_F(HostileLayersTest, AbsoluteAndDotDotPathsAreJudgedWhereTheyLand) {
  TarBuilder tar;
  tar.file("/usr/bin/bash", "ELF", 0755).file("../../../bin/sh", "ELF", 0755);
  const PushedTestImage image = pushGzip("test/escaping-paths", tar.tar(), "COPY shells /");
  const std::string message = messageOf(reviewHostile(image).response);
  // Under the root, as the runtime extracts them: found as shells there, nothing above it.
  EXPECT_THAT(message, AllOf(HasSubstr("/bin/sh"), HasSubstr("/usr/bin/bash"),
                             HasSubstr("layer 1/1"), HasSubstr("COPY shells /")));
  EXPECT_THAT(message, Not(HasSubstr("..")));
}

TEST_F(HostileLayersTest, SymlinkLoopsReachNothingAndTheRestIsStillJudged) {
  TarBuilder tar;
  tar.dir("bin")
      .symlink("bin/sh", "/bin/dash")
      .symlink("bin/dash", "/bin/sh")
      .symlink("loop/a", "b")
      .symlink("loop/b", "/loop/a")
      .symlink("bin/bash", "/loop/a/bash")
      .file("bin/busybox", "ELF", 0755)
      .symlink("bin/ash", "busybox");
  const PushedTestImage image = pushGzip("test/symlink-loop", tar.tar(), "RUN ln -s");
  const std::string message = messageOf(reviewHostile(image).response);
  // Resolution stops at each loop (no file is there to run); busybox behind /bin/ash is found.
  EXPECT_THAT(message, AllOf(HasSubstr("/bin/ash"), HasSubstr("layer 1/1")));
  EXPECT_THAT(message, AllOf(Not(HasSubstr("/bin/dash")), Not(HasSubstr("/bin/bash"))));
}

TEST_F(HostileLayersTest, HardlinkToAMissingPathIsAnError) {
  TarBuilder tar;
  tar.dir("app").hardlink("app/server", "app/nowhere");
  const PushedTestImage image = pushGzip("test/dangling-hardlink", tar.tar());
  EXPECT_THAT(
      messageOf(reviewHostile(image).response),
      AllOf(HasSubstr("cannot apply the layers of " + image.tagRef), HasSubstr("app/nowhere")));
}

TEST_F(HostileLayersTest, SamePathTenThousandTimesIsOneFinding) {
  TarBuilder tar;
  for (int i = 0; i < 10'000; ++i) tar.file("bin/sh", std::to_string(i), 0755);
  const PushedTestImage image = pushGzip("test/same-path", tar.tar(), "RUN for i in ...");
  const std::string message = messageOf(reviewHostile(image).response);
  EXPECT_THAT(message, AllOf(HasSubstr("/bin/sh"), HasSubstr("layer 1/1")));
  EXPECT_THAT(message, Not(HasSubstr("2 shells")));
}

TEST_F(HostileLayersTest, OverLongPathIsAnErrorNamingTheLimit) {
  TarBuilder tar;  // pax: the name lives in an extended header, as long as it likes
  tar.file("app/" + std::string(5000, 'x'), "x");
  const PushedTestImage image = pushGzip("test/long-path", tar.tar());
  EXPECT_THAT(messageOf(reviewHostile(image).response),
              AllOf(HasSubstr("layer 1/1"), HasSubstr("5004-byte path, longer than 4096"),
                    HasSubstr("maxPathLength")));
}

TEST_F(HostileLayersTest, EntryCountOverTheLimitIsAnError) {
  TarBuilder tar(TarBuilder::Format::kUstar);
  for (int i = 0; i <= kMaxEntries; ++i) tar.file("f/" + std::to_string(i), "");
  const PushedTestImage image = pushGzip("test/many-entries", tar.tar());
  EXPECT_THAT(messageOf(reviewHostile(image).response),
              AllOf(HasSubstr("layer 1/1"),
                    HasSubstr("more than " + std::to_string(kMaxEntries) + " tar members"),
                    HasSubstr("maxEntries")));
}

}  // namespace
}  // namespace imagegate::testutil
