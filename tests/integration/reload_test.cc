#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "testutil/admission_review.h"
#include "testutil/certificates.h"
#include "testutil/server_process.h"
#include "testutil/shell.h"
#include "testutil/tls_client.h"

// `imagegate serve` reloading its certificate and policies while a client keeps sending reviews.
// The files are laid out the way the kubelet mounts Secrets and ConfigMaps: the visible names are
// symlinks into `..data`, itself a symlink to a timestamped directory, and an update writes a new
// directory and renames a new `..data` symlink over the old one.
namespace imagegate {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testutil;  // NOLINT: test helpers

// Liveness limits only: a reload is polled every second, the machine may be busy.
constexpr seconds kReloadTimeout{30};

const fs::path kReview = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/admission/pod-allow.json";

constexpr const char* kAllowingPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: baseline}
spec:
  action: Enforce
  rules:
    - name: no-privileged
      privileged: {allowed: false}
)";

// pod-allow.json's image comes from registry.example.com.
constexpr const char* kDenyingPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: baseline}
spec:
  action: Enforce
  rules:
    - name: no-example-registry
      disallowedRegistries: ["registry.example.com"]
)";

constexpr const char* kBrokenPolicy = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: baseline}
spec:
  action: Enforce
  rules:
    - name: typo
      privilegd: {allowed: false}
)";

/// A kubelet-style volume: `files` under a new timestamped directory, made visible at once by
/// renaming a fresh `..data` symlink over the old one.
class ProjectedVolume {
 public:
  explicit ProjectedVolume(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

  void publish(const std::map<std::string, std::string>& files) {
    const std::string version = "..2026_12_05_" + std::to_string(++generation_);
    fs::create_directories(dir_ / version);
    for (const auto& [name, content] : files) writeFile(dir_ / version / name, content);
    fs::create_symlink(version, dir_ / "..data_tmp");
    fs::rename(dir_ / "..data_tmp", dir_ / "..data");  // the atomic swap
    for (const auto& [name, content] : files) {
      if (!fs::is_symlink(dir_ / name)) fs::create_symlink("..data/" + name, dir_ / name);
    }
  }

  fs::path path(const std::string& name) const { return dir_ / name; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  int generation_ = 0;
};

/// One review on a new connection, verified against `ca`: the raw response, "" when the
/// connection or handshake failed.
std::string reviewOnce(int port, const fs::path& ca, const std::string& body) {
  try {
    TlsClient client(port, ca);
    if (!client.send(validateRequest(body))) return "";
    return client.readResponse();
  } catch (const std::exception&) {
    return "";
  }
}

bool handshakes(int port, const fs::path& ca) {
  try {
    TlsClient client(port, ca);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string getReadyz(int port, const fs::path& ca) {
  try {
    TlsClient client(port, ca);
    if (!client.send("GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) {
      return "";
    }
    const std::string response = client.readResponse();
    const std::size_t body = response.find("\r\n\r\n");
    return body == std::string::npos ? "" : response.substr(body + 4);
  } catch (const std::exception&) {
    return "";
  }
}

std::string lineOf(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key + ": ");
  if (at == std::string::npos) return "";
  const std::size_t start = at + key.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTestDir("reload-test");
    // Two CAs, each with a serving certificate for 127.0.0.1.
    for (const char* name : {"a", "b"}) {
      fs::create_directories(dir_ / name);
      generateCertificates(dir_ / name);
    }
    writeFile(dir_ / "both-cas.crt",
              readFile(dir_ / "a" / "ca.crt") + readFile(dir_ / "b" / "ca.crt"));
    certs_ = std::make_unique<ProjectedVolume>(dir_ / "certs");
    policies_ = std::make_unique<ProjectedVolume>(dir_ / "policies");
    publishCertificate("a", "a");
    policies_->publish({{"policy.yaml", kAllowingPolicy}});
    body_ = readFile(kReview);

    server_ = startServer({certs_->path("tls.crt"), certs_->path("tls.key"), policies_->dir()},
                          dir_ / "server.log", {"--threads", "2"});
  }

  void TearDown() override {
    server_.child.reset();
    removeTestDir(dir_);
  }

  /// Publishes `certFrom`'s certificate with `keyFrom`'s key.
  void publishCertificate(const std::string& certFrom, const std::string& keyFrom) {
    certs_->publish({{"tls.crt", readFile(dir_ / certFrom / "serving.crt")},
                     {"tls.key", readFile(dir_ / keyFrom / "serving.key")}});
  }

  std::string log() const { return readFile(dir_ / "server.log"); }
  std::string readyz() const { return getReadyz(server_.port, dir_ / "both-cas.crt"); }
  std::string review() const { return reviewOnce(server_.port, dir_ / "both-cas.crt", body_); }

  fs::path dir_;
  std::unique_ptr<ProjectedVolume> certs_;
  std::unique_ptr<ProjectedVolume> policies_;
  std::string body_;
  ServerProcess server_;
};

TEST_F(ReloadTest, CertificateAndPoliciesSwapUnderLoadWithoutAFailedRequest) {
  const std::string firstReady = readyz();
  const std::string firstRevision = lineOf(firstReady, "policyRevision");
  ASSERT_EQ(firstRevision.size(), 12u) << firstReady;
  const std::string firstNotAfter = lineOf(firstReady, "certificateNotAfter");
  ASSERT_THAT(firstNotAfter, ::testing::MatchesRegex("20[0-9-]+T[0-9:]+Z")) << firstReady;
  ASSERT_THAT(review(), HasSubstr("\"allowed\":true"));

  // A client sending reviews on new connections the whole time, trusting both CAs.
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  std::string firstFailure;
  std::thread client([&] {
    while (!stop) {
      const std::string response = review();
      ++sent;
      if (response.rfind("HTTP/1.1 200", 0) != 0 && failed++ == 0) firstFailure = response;
    }
  });

  // The certificate: new handshakes get B's; A's CA no longer verifies them.
  publishCertificate("b", "b");
  EXPECT_TRUE(
      waitFor([&] { return handshakes(server_.port, dir_ / "b" / "ca.crt"); }, kReloadTimeout))
      << log();
  EXPECT_FALSE(handshakes(server_.port, dir_ / "a" / "ca.crt"));
  EXPECT_THAT(log(), HasSubstr("\"msg\":\"certificate reloaded\""));

  // A policy set that denies the review: later reviews are denied, the revision moves on.
  policies_->publish({{"policy.yaml", kDenyingPolicy}});
  EXPECT_TRUE(waitFor([&] { return review().find("\"allowed\":false") != std::string::npos; },
                      kReloadTimeout))
      << log();
  const std::string secondRevision = lineOf(readyz(), "policyRevision");
  EXPECT_NE(secondRevision, firstRevision);
  EXPECT_EQ(secondRevision.size(), 12u);

  // A broken policy set is rejected whole: the denying set stays, and so does its revision.
  policies_->publish({{"policy.yaml", kBrokenPolicy}});
  EXPECT_TRUE(waitFor([&] { return log().find("\"kind\":\"policies\"") != std::string::npos; },
                      kReloadTimeout))
      << log();
  EXPECT_THAT(log(), HasSubstr("reload rejected: keeping what was loaded before"));
  EXPECT_THAT(log(), HasSubstr("privilegd"));
  EXPECT_EQ(lineOf(readyz(), "policyRevision"), secondRevision);
  EXPECT_THAT(review(), HasSubstr("\"allowed\":false"));

  // A key that does not match the certificate is rejected too: B's certificate stays.
  publishCertificate("a", "b");
  EXPECT_TRUE(waitFor([&] { return log().find("\"kind\":\"certificate\"") != std::string::npos; },
                      kReloadTimeout))
      << log();
  EXPECT_THAT(log(), HasSubstr("does not match certificate"));
  EXPECT_TRUE(handshakes(server_.port, dir_ / "b" / "ca.crt"));

  stop = true;
  client.join();
  std::cout << sent << " reviews on new connections during the swaps, " << failed << " failed\n";
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(failed.load(), 0) << "first failed response: " << firstFailure << "\n" << log();
  EXPECT_TRUE(server_.running()) << log();
}

}  // namespace
}  // namespace imagegate
