// The registry client against a real docker-registry 2.8 (Debian's package), started by the
// fixture scripts in tests/fixtures/registry: plain HTTP, TLS + htpasswd, TLS + bearer tokens,
// and a black hole that accepts connections and never answers.
//
// The images are built once per run (RegistryFixtures environment); each registry mode is started
// and filled once per suite. All FetchError messages seen anywhere are checked for credentials at
// the end of the run.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "registry/auth.h"
#include "registry/distribution_registry.h"
#include "registry/http_client.h"
#include "registry/registry_config.h"
#include "testutil/fixture_registry.h"
#include "testutil/shell.h"

namespace imagegate::registry {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = FetchError::Kind;
using namespace imagegate::testutil;  // NOLINT: test helpers

const fs::path kFixtures = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/fixtures/registry";

// Secrets the fixtures use; no error message may contain any of them.
const std::vector<std::string> kSecrets = {"testpass", base64Encode("testuser:testpass"),
                                           base64Encode("testuser:wrong-testpass")};

std::mutex messagesMutex;
std::vector<std::string> allMessages;

void remember(const std::string& message) {
  std::lock_guard lock(messagesMutex);
  allMessages.push_back(message);
}

// Runs STEP, a fixture script or more; a failure is a test failure, and leaves what the step was
// to read empty, which the suites' SetUp checks.
void reportFailure(const std::function<void()>& step) {
  try {
    step();
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

class RegistryFixtures : public ::testing::Environment {
 public:
  static fs::path root() { return root_; }
  static fs::path images() { return root_ / "images"; }

  void SetUp() override {
    root_ = fs::temp_directory_path() / ("imagegate-registry-it-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    reportFailure([] {
      runFixtureScript(kFixtures, "build-images.sh", {images().string()},
                       root_ / "build-images.log");
    });
  }

  void TearDown() override {
    std::lock_guard lock(messagesMutex);
    EXPECT_GT(allMessages.size(), 10u);
    for (const std::string& message : allMessages) {
      for (const std::string& secret : kSecrets) {
        EXPECT_THAT(message, Not(HasSubstr(secret)));
      }
    }
    if (std::getenv("IMAGEGATE_KEEP_FIXTURES") == nullptr &&
        ::testing::UnitTest::GetInstance()->Passed()) {
      fs::remove_all(root_);
    }
  }

 private:
  static inline fs::path root_;
};

// One registry process group (start-registry.sh MODE) in RegistryFixtures::root()/NAME, stopped on
// destruction; its failures are test failures.
class RegistryServer : public FixtureRegistry {
 public:
  // Outlives the CTest timeout (900 s) of this test, as the script's default does.
  static constexpr int kMaxLifetimeSeconds = 1800;

  RegistryServer(const std::string& mode, const std::string& name)
      : FixtureRegistry(kFixtures, mode, RegistryFixtures::root() / name, kMaxLifetimeSeconds) {
    reportFailure([this] { start(); });
  }
  ~RegistryServer() { stop(); }

  void push() {
    reportFailure([this] { FixtureRegistry::push(RegistryFixtures::images()); });
  }
  void stop() {
    reportFailure([this] { FixtureRegistry::stop(); });
  }

  bool ready() const { return !host().empty(); }
};

// A suite with one registry of MODE (in a directory of that name), started and filled with the
// images once for the suite.
template <const char* kMode>
class FilledRegistrySuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<RegistryServer>(kMode, kMode);
    if (server_->ready()) {
      server_->push();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    ASSERT_TRUE(server_->ready() && !server_->pushed("KEYS").empty()) << "fixture failed";
  }
  static std::string host() { return server_->host(); }

  static inline std::unique_ptr<RegistryServer> server_;
};

constexpr char kPlain[] = "plain";
constexpr char kTlsBasic[] = "tls-basic";
constexpr char kToken[] = "token";

image::ImageRef imageRef(const std::string& registry, const std::string& repository,
                         const std::string& tag, const std::string& digest = "") {
  image::ImageRef ref;
  ref.registry = registry;
  ref.repository = repository;
  ref.tag = tag;
  ref.digest = digest;
  return ref;
}

RegistryPtr makeRegistry(const std::string& yaml) {
  return makeDistributionRegistry(RegistryConfig::parse(yaml, "test-registry.yaml"));
}

image::ImageFacts fetch(const RegistryPtr& registry, const image::ImageRef& ref,
                        const std::string& platform = "linux/amd64",
                        std::chrono::milliseconds budget = std::chrono::seconds(20)) {
  return registry->fetchFacts(ref, image::Platform::parse(platform), Deadline::after(budget));
}

FetchError fetchError(const RegistryPtr& registry, const image::ImageRef& ref,
                      const std::string& platform = "linux/amd64",
                      std::chrono::milliseconds budget = std::chrono::seconds(20)) {
  try {
    fetch(registry, ref, platform, budget);
  } catch (const FetchError& e) {
    remember(e.what());
    std::cout << "  FetchError: " << e.what() << "\n";  // for reading the wording in the log
    return e;
  }
  ADD_FAILURE() << "fetching " << ref.repository << " succeeded";
  return FetchError(Kind::kServerError, "");
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) {
    text += (text.empty() ? "" : " ") + item;
  }
  return text;
}

// --- plain HTTP ------------------------------------------------------------------------------

class PlainRegistry : public FilledRegistrySuite<kPlain> {
 protected:
  void SetUp() override {
    FilledRegistrySuite::SetUp();
    if (HasFatalFailure()) return;
    registry_ = makeRegistry("registries: [{host: '" + host() + "', insecure: true}]\n");
  }
  static std::string pushed(const std::string& key) { return server_->pushed(key); }

  RegistryPtr registry_;
};

TEST_F(PlainRegistry, FetchesOciImage) {
  const image::ImageFacts facts = fetch(registry_, imageRef(host(), "test/static", "1"));
  EXPECT_EQ(facts.manifestDigest, pushed("STATIC_1_MANIFEST_DIGEST"));
  EXPECT_EQ(facts.manifestMediaType, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(facts.config.digest, pushed("STATIC_1_CONFIG_DIGEST"));
  EXPECT_EQ(facts.imageConfig.user, "65532:65532");
  EXPECT_EQ(facts.imageConfig.entrypoint, std::vector<std::string>{"/app/hello"});
  EXPECT_EQ(facts.imageConfig.os, "linux");
  EXPECT_EQ(facts.imageConfig.architecture, "amd64");
  EXPECT_EQ(facts.platform.str(), "linux/amd64");
  EXPECT_EQ(std::to_string(facts.layers.size()), pushed("STATIC_1_LAYER_COUNT"));
  EXPECT_EQ(std::to_string(facts.compressedSize()), pushed("STATIC_1_LAYERS_TOTAL_SIZE"));
  EXPECT_EQ(join(facts.imageConfig.diffIds), pushed("STATIC_1_DIFF_IDS"));
  EXPECT_EQ(facts.imageConfig.labels.at("io.imagegate.test.fixture"), "registry");
}

TEST_F(PlainRegistry, UsersAsWritten) {
  EXPECT_EQ(fetch(registry_, imageRef(host(), "test/static-root", "1")).imageConfig.user, "root");
  EXPECT_EQ(fetch(registry_, imageRef(host(), "test/static-nouser", "1")).imageConfig.user, "");
}

TEST_F(PlainRegistry, BusyboxConfig) {
  const image::ImageFacts facts = fetch(registry_, imageRef(host(), "test/busybox", "1"));
  EXPECT_EQ(facts.manifestDigest, pushed("BUSYBOX_1_MANIFEST_DIGEST"));
  EXPECT_EQ(facts.imageConfig.entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(facts.imageConfig.cmd, (std::vector<std::string>{"-c", "id"}));
  EXPECT_EQ(facts.imageConfig.env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(facts.imageConfig.workingDir, "/");
  EXPECT_EQ(std::to_string(facts.compressedSize()), pushed("BUSYBOX_1_LAYERS_TOTAL_SIZE"));
}

TEST_F(PlainRegistry, IndexResolvesAmd64AndArm64) {
  const image::ImageFacts amd = fetch(registry_, imageRef(host(), "test/multi", "1"));
  EXPECT_EQ(amd.manifestDigest, pushed("MULTI_1_AMD64_MANIFEST_DIGEST"));
  EXPECT_EQ(amd.imageConfig.user, "65532:65532");
  EXPECT_EQ(amd.platform.str(), "linux/amd64");
  for (const std::string platform : {"linux/arm64", "linux/arm64/v8"}) {
    const image::ImageFacts arm = fetch(registry_, imageRef(host(), "test/multi", "1"), platform);
    EXPECT_EQ(arm.manifestDigest, pushed("MULTI_1_ARM64_MANIFEST_DIGEST")) << platform;
    EXPECT_EQ(arm.imageConfig.user, "1000");
    EXPECT_EQ(arm.imageConfig.architecture, "arm64");
  }
}

TEST_F(PlainRegistry, IndexWithoutThePlatform) {
  const FetchError error =
      fetchError(registry_, imageRef(host(), "test/multi", "1"), "linux/s390x");
  EXPECT_EQ(error.kind(), Kind::kNoMatchingPlatform);
  EXPECT_THAT(error.what(), HasSubstr("cannot fetch " + host() + "/test/multi:1 from " + host()));
  EXPECT_THAT(error.what(), HasSubstr("linux/s390x"));
  EXPECT_THAT(error.what(), HasSubstr("linux/amd64"));
  EXPECT_THAT(error.what(), HasSubstr("linux/arm64"));
}

TEST_F(PlainRegistry, DockerSchema2AndManifestList) {
  const image::ImageFacts single = fetch(registry_, imageRef(host(), "test/static", "v2s2"));
  EXPECT_EQ(single.manifestMediaType, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(single.manifestDigest, pushed("STATIC_V2S2_MANIFEST_DIGEST"));
  EXPECT_EQ(single.config.mediaType, "application/vnd.docker.container.image.v1+json");
  EXPECT_EQ(single.imageConfig.user, "65532:65532");
  EXPECT_EQ(single.layers.at(0).mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");

  const image::ImageFacts arm =
      fetch(registry_, imageRef(host(), "test/multi", "v2s2"), "linux/arm64");
  EXPECT_EQ(arm.manifestDigest, pushed("MULTI_V2S2_ARM64_MANIFEST_DIGEST"));
  EXPECT_EQ(arm.manifestMediaType, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(arm.imageConfig.user, "1000");
  const image::ImageFacts amd = fetch(registry_, imageRef(host(), "test/multi", "v2s2"));
  EXPECT_EQ(amd.manifestDigest, pushed("MULTI_V2S2_AMD64_MANIFEST_DIGEST"));
}

TEST_F(PlainRegistry, ZstdLayers) {
  const image::ImageFacts facts = fetch(registry_, imageRef(host(), "test/static", "zstd"));
  EXPECT_EQ(facts.manifestDigest, pushed("STATIC_ZSTD_MANIFEST_DIGEST"));
  ASSERT_EQ(facts.layers.size(), 1u);
  EXPECT_EQ(facts.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
  EXPECT_EQ(join(facts.imageConfig.diffIds), pushed("STATIC_1_DIFF_IDS"));
}

TEST_F(PlainRegistry, BigImage) {
  const image::ImageFacts facts = fetch(registry_, imageRef(host(), "test/big", "1"));
  EXPECT_EQ(std::to_string(facts.layers.size()), pushed("BIG_1_LAYER_COUNT"));
  EXPECT_EQ(std::to_string(facts.compressedSize()), pushed("BIG_1_LAYERS_TOTAL_SIZE"));
}

TEST_F(PlainRegistry, UnknownTagAndRepository) {
  const FetchError tag = fetchError(registry_, imageRef(host(), "test/static", "nope"));
  EXPECT_EQ(tag.kind(), Kind::kNotFound);
  EXPECT_THAT(tag.what(), HasSubstr("cannot fetch " + host() + "/test/static:nope from " + host() +
                                    ": manifest unknown (HTTP 404)"));
  EXPECT_EQ(fetchError(registry_, imageRef(host(), "test/absent", "1")).kind(), Kind::kNotFound);
}

TEST_F(PlainRegistry, DigestPinnedReferences) {
  const std::string digest = pushed("STATIC_1_MANIFEST_DIGEST");
  const image::ImageFacts facts = fetch(registry_, imageRef(host(), "test/static", "", digest));
  EXPECT_EQ(facts.manifestDigest, digest);
  // Tag and digest: the digest is what is pulled.
  EXPECT_EQ(fetch(registry_, imageRef(host(), "test/static", "v2s2", digest)).manifestDigest,
            digest);
  // An index pinned by digest still resolves to the platform's manifest.
  const image::ImageFacts arm =
      fetch(registry_, imageRef(host(), "test/multi", "", pushed("MULTI_1_MANIFEST_DIGEST")),
            "linux/arm64");
  EXPECT_EQ(arm.manifestDigest, pushed("MULTI_1_ARM64_MANIFEST_DIGEST"));

  const std::string wrong = "sha256:" + std::string(64, '0');
  const FetchError error = fetchError(registry_, imageRef(host(), "test/static", "1", wrong));
  EXPECT_THAT(error.kind(), AnyOf(Kind::kNotFound, Kind::kInvalidContent));
  EXPECT_THAT(error.what(), HasSubstr("@" + wrong));
}

// Changes a blob in the registry's filesystem storage, in place, and puts it back on
// destruction. docker-registry serves stored blobs without re-hashing them, so this is how a
// corrupted or malicious registry looks from the client: the right digest header, other bytes.
class TamperedBlob {
 public:
  using Change = std::function<void(std::string&)>;

  TamperedBlob(const fs::path& registryDir, const std::string& digest, const Change& change)
      : path_(registryDir / "data/docker/registry/v2/blobs/sha256" / digest.substr(7, 2) /
              digest.substr(7) / "data"),
        original_(readFile(path_)) {
    if (original_.empty()) throw std::runtime_error("no stored blob at " + path_.string());
    std::string tampered = original_;
    change(tampered);
    if (tampered == original_) throw std::runtime_error("tampering changed nothing");
    writeFile(path_, tampered);
  }
  ~TamperedBlob() { writeFile(path_, original_); }
  TamperedBlob(const TamperedBlob&) = delete;
  TamperedBlob& operator=(const TamperedBlob&) = delete;

 private:
  fs::path path_;
  std::string original_;
};

TEST_F(PlainRegistry, TamperedConfigBlobIsADigestMismatch) {
  {
    const TamperedBlob tampered(server_->dir(), pushed("STATIC_ROOT_1_CONFIG_DIGEST"),
                                [](std::string& blob) { blob[blob.size() / 2] ^= 0x20; });
    const FetchError error = fetchError(registry_, imageRef(host(), "test/static-root", "1"));
    EXPECT_EQ(error.kind(), Kind::kInvalidContent);
    EXPECT_THAT(error.what(), HasSubstr("test/static-root:1"));
    EXPECT_THAT(error.what(), HasSubstr(pushed("STATIC_ROOT_1_CONFIG_DIGEST")));
  }
  // Restored, the same image fetches again: nothing bad was kept.
  EXPECT_EQ(fetch(registry_, imageRef(host(), "test/static-root", "1")).imageConfig.user, "root");
}

TEST_F(PlainRegistry, TamperedManifestIsADigestMismatch) {
  const std::string digest = pushed("STATIC_ROOT_1_MANIFEST_DIGEST");
  // The registry parses manifests it serves, so the change keeps the JSON valid: a layer size
  // that is one digit off.
  const TamperedBlob tampered(server_->dir(), digest, [](std::string& manifest) {
    const auto size = manifest.find("\"size\":");
    ASSERT_NE(size, std::string::npos);
    char& digit = manifest[size + 7];
    digit = digit == '1' ? '2' : '1';
  });
  const FetchError pinned = fetchError(registry_, imageRef(host(), "test/static-root", "", digest));
  EXPECT_EQ(pinned.kind(), Kind::kInvalidContent);
  EXPECT_THAT(pinned.what(), HasSubstr("hashes to sha256:"));
  EXPECT_THAT(pinned.what(), HasSubstr(", not " + digest));
  // By tag, the body is checked against the registry's own Docker-Content-Digest.
  const FetchError byTag = fetchError(registry_, imageRef(host(), "test/static-root", "1"));
  EXPECT_EQ(byTag.kind(), Kind::kInvalidContent);
  EXPECT_THAT(byTag.what(), HasSubstr(", not " + digest));
}

TEST_F(PlainRegistry, ConcurrentFetchesShareTheClient) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const std::string platform = i % 2 == 0 ? "linux/amd64" : "linux/arm64";
      try {
        const image::ImageFacts facts =
            fetch(registry_, imageRef(host(), "test/multi", "1"), platform);
        if (facts.imageConfig.user == (i % 2 == 0 ? "65532:65532" : "1000")) {
          ++ok;
        }
      } catch (const FetchError& e) {
        remember(e.what());
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok.load(), 8);
}

TEST_F(PlainRegistry, HttpClientReusesConnections) {
  HttpClient client;
  HttpRequest request;
  request.url = *parseUrl("http://" + host() + "/v2/");
  const Deadline deadline = Deadline::after(std::chrono::seconds(10));
  EXPECT_EQ(client.send(request, deadline, {}).status, 200u);
  EXPECT_EQ(client.idleConnections(), 1u);
  EXPECT_EQ(client.send(request, deadline, {}).status, 200u);
  EXPECT_EQ(client.idleConnections(), 1u);  // the same connection went back

  // Streaming: a blob arrives through the sink and is not buffered.
  request.url.target = "/v2/test/busybox/blobs/" + pushed("BUSYBOX_1_LAYER_DIGESTS");
  std::size_t streamed = 0;
  int chunks = 0;
  ReadOptions read;
  read.bodyLimit = 8 * 1024 * 1024;
  read.sink = [&](std::string_view chunk) {
    streamed += chunk.size();
    ++chunks;
  };
  const HttpResponse blob = client.send(request, deadline, read);
  EXPECT_EQ(blob.status, 200u);
  EXPECT_TRUE(blob.body.empty());
  EXPECT_EQ(std::to_string(streamed), pushed("BUSYBOX_1_LAYERS_TOTAL_SIZE"));
  EXPECT_GT(chunks, 1);

  read.bodyLimit = 1000;  // over the limit: kInvalidContent, not a truncated body
  try {
    client.send(request, deadline, read);
    ADD_FAILURE() << "no body limit";
  } catch (const FetchError& e) {
    EXPECT_EQ(e.kind(), Kind::kInvalidContent);
  }
}

TEST_F(PlainRegistry, PlainHttpOnlyWhenConfiguredInsecure) {
  const RegistryPtr strict = makeRegistry("registries: []\n");
  const FetchError error = fetchError(strict, imageRef(host(), "test/static", "1"));
  EXPECT_EQ(error.kind(), Kind::kTlsFailure);
}

// --- TLS + htpasswd --------------------------------------------------------------------------

class TlsBasicRegistry : public FilledRegistrySuite<kTlsBasic> {
 protected:
  static std::string ca() { return server_->env("REGISTRY_CA"); }
  static std::string dockerConfig(const std::string& name) {
    return (server_->dir() / name).string();
  }
  static RegistryPtr withCredentials(const std::string& configFile, const std::string& caFile) {
    std::string yaml = "dockerConfig: " + dockerConfig(configFile) + "\n";
    yaml += "registries:\n  - host: '" + host() + "'\n";
    if (!caFile.empty()) {
      yaml += "    caFile: " + caFile + "\n";
    }
    return makeRegistry(yaml);
  }
};

TEST_F(TlsBasicRegistry, FetchesWithDockerConfigCredentials) {
  for (const char* file : {"docker-config.json", "docker-config-userpass.json"}) {
    const RegistryPtr registry = withCredentials(file, ca());
    const image::ImageFacts facts = fetch(registry, imageRef(host(), "test/static", "1"));
    EXPECT_EQ(facts.manifestDigest, server_->pushed("STATIC_1_MANIFEST_DIGEST")) << file;
    EXPECT_EQ(facts.imageConfig.user, "65532:65532");
    const image::ImageFacts arm =
        fetch(registry, imageRef(host(), "test/multi", "1"), "linux/arm64");
    EXPECT_EQ(arm.imageConfig.user, "1000");
  }
}

TEST_F(TlsBasicRegistry, WrongPasswordIsUnauthorized) {
  const FetchError error = fetchError(withCredentials("docker-config-wrong.json", ca()),
                                      imageRef(host(), "test/static", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr(host()));
  EXPECT_THAT(error.what(), HasSubstr("HTTP 401"));
  EXPECT_THAT(error.what(), Not(HasSubstr("wrong-testpass")));
  EXPECT_THAT(error.what(), Not(HasSubstr(base64Encode("testuser:wrong-testpass"))));
}

TEST_F(TlsBasicRegistry, NoCredentialsIsUnauthorized) {
  const RegistryPtr registry =
      makeRegistry("registries: [{host: '" + host() + "', caFile: " + ca() + "}]\n");
  const FetchError error = fetchError(registry, imageRef(host(), "test/static", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("docker config has none"));
}

TEST_F(TlsBasicRegistry, UntrustedCertificateIsTlsFailure) {
  for (const std::string& caFile : {std::string(), server_->env("REGISTRY_WRONG_CA")}) {
    const FetchError error = fetchError(withCredentials("docker-config.json", caFile),
                                        imageRef(host(), "test/static", "1"));
    EXPECT_EQ(error.kind(), Kind::kTlsFailure) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("certificate verify failed"));
  }
}

// System trust comes from OpenSSL's hashed certificate directory (read lazily, not the whole
// bundle at start): a CA placed there, and only there, is trusted without any caFile.
TEST_F(TlsBasicRegistry, SystemTrustFromAHashedCertificateDirectory) {
  const fs::path dir = server_->dir() / "system-certs";
  fs::create_directories(dir);
  fs::copy_file(ca(), dir / "fixture-ca.pem", fs::copy_options::overwrite_existing);
  runOrThrow("openssl rehash " + shellQuote(dir.string()) + " 2>&1");
  ::setenv("SSL_CERT_DIR", dir.c_str(), 1);
  const RegistryPtr registry = withCredentials("docker-config.json", "");
  std::optional<image::ImageFacts> facts;
  try {
    facts = fetch(registry, imageRef(host(), "test/static", "1"));
  } catch (const FetchError& e) {
    ADD_FAILURE() << e.what();
  }
  ::unsetenv("SSL_CERT_DIR");
  ASSERT_TRUE(facts.has_value());
  EXPECT_EQ(facts->imageConfig.user, "65532:65532");
}

TEST_F(TlsBasicRegistry, HostNameIsVerifiedAndSniSent) {
  // The certificate names localhost and 127.0.0.1; by name, SNI is sent and the DNS SAN checked.
  const std::string byName = "localhost:" + server_->port();
  const fs::path config = server_->dir() / "docker-config-localhost.json";
  std::ofstream(config) << R"({"auths":{")" << byName << R"(":{"auth":")"
                        << base64Encode("testuser:testpass") << R"("}}})";
  const RegistryPtr registry =
      makeRegistry("dockerConfig: " + config.string() + "\nregistries: [{host: '" + byName +
                   "', caFile: " + ca() + "}]\n");
  EXPECT_EQ(fetch(registry, imageRef(byName, "test/static", "1")).imageConfig.user, "65532:65532");
}

// --- TLS + bearer tokens ---------------------------------------------------------------------

class TokenRegistry : public FilledRegistrySuite<kToken> {
 protected:
  // The registry and its token service (another port) both use the fixture CA.
  static RegistryPtr registry(const std::string& dockerConfigFile) {
    const std::string ca = server_->env("REGISTRY_CA");
    const auto realm = parseUrl(server_->env("TOKEN_REALM"));
    std::string yaml;
    if (!dockerConfigFile.empty()) {
      yaml += "dockerConfig: " + (server_->dir() / dockerConfigFile).string() + "\n";
    }
    yaml += "registries:\n  - {host: '" + host() + "', caFile: " + ca + "}\n";
    yaml += "  - {host: '" + realm->authority() + "', caFile: " + ca + "}\n";
    return makeRegistry(yaml);
  }
  static std::size_t tokenRequests() {
    std::ifstream in(server_->env("TOKEN_REQUEST_LOG"));
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) {
      ++lines;
    }
    return lines;
  }
};

TEST_F(TokenRegistry, AnonymousPull) {
  const RegistryPtr anonymous = registry("");
  const image::ImageFacts facts = fetch(anonymous, imageRef(host(), "test/static", "1"));
  EXPECT_EQ(facts.manifestDigest, server_->pushed("STATIC_1_MANIFEST_DIGEST"));
  EXPECT_EQ(facts.imageConfig.user, "65532:65532");
}

TEST_F(TokenRegistry, PullWithCredentialsAndTokenCache) {
  const RegistryPtr withCredentials = registry("docker-config.json");
  const std::size_t before = tokenRequests();
  const image::ImageFacts arm =
      fetch(withCredentials, imageRef(host(), "test/multi", "1"), "linux/arm64");
  EXPECT_EQ(arm.manifestDigest, server_->pushed("MULTI_1_ARM64_MANIFEST_DIGEST"));
  EXPECT_EQ(arm.imageConfig.user, "1000");
  const std::size_t afterFirst = tokenRequests();
  EXPECT_EQ(afterFirst, before + 1);  // one token for the repository covers all three requests
  fetch(withCredentials, imageRef(host(), "test/multi", "1"));
  EXPECT_EQ(tokenRequests(), afterFirst);  // cached
  fetch(withCredentials, imageRef(host(), "test/static", "1"));
  EXPECT_EQ(tokenRequests(), afterFirst + 1);  // another repository, another scope
}

TEST_F(TokenRegistry, WrongPasswordIsUnauthorized) {
  const FetchError error =
      fetchError(registry("docker-config-wrong.json"), imageRef(host(), "test/static", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnauthorized);
  EXPECT_THAT(error.what(), HasSubstr("token service"));
  EXPECT_THAT(error.what(), Not(HasSubstr("wrong-testpass")));
}

TEST_F(TokenRegistry, UnknownTagWithToken) {
  const FetchError error =
      fetchError(registry("docker-config.json"), imageRef(host(), "test/static", "missing"));
  EXPECT_EQ(error.kind(), Kind::kNotFound);
}

// --- failures of the transport ---------------------------------------------------------------

TEST(RegistryFailures, BlackholeTimesOutWithinTheDeadline) {
  RegistryServer blackhole("blackhole", "blackhole");
  ASSERT_TRUE(blackhole.ready());
  const RegistryPtr registry =
      makeRegistry("registries: [{host: '" + blackhole.host() + "', insecure: true}]\n");
  const auto started = SteadyClock::now();
  const FetchError error = fetchError(registry, imageRef(blackhole.host(), "test/static", "1"),
                                      "linux/amd64", std::chrono::milliseconds(1500));
  const auto elapsed = SteadyClock::now() - started;
  EXPECT_EQ(error.kind(), Kind::kTimeout) << error.what();
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // generous: only "not hanging" matters

  // Over TLS the handshake is what hangs.
  const RegistryPtr tls = makeRegistry("registries: []\n");
  EXPECT_EQ(fetchError(tls, imageRef(blackhole.host(), "test/static", "1"), "linux/amd64",
                       std::chrono::milliseconds(1500))
                .kind(),
            Kind::kTimeout);
}

TEST(RegistryFailures, StoppedRegistryIsUnreachable) {
  RegistryServer server("plain", "stopped");
  ASSERT_TRUE(server.ready());
  const RegistryPtr registry =
      makeRegistry("registries: [{host: '" + server.host() + "', insecure: true}]\n");
  // Up: an empty registry answers 404 (and leaves a keep-alive connection in the pool).
  EXPECT_EQ(fetchError(registry, imageRef(server.host(), "test/static", "1")).kind(),
            Kind::kNotFound);
  server.stop();
  const FetchError error = fetchError(registry, imageRef(server.host(), "test/static", "1"));
  EXPECT_EQ(error.kind(), Kind::kUnreachable) << error.what();
  EXPECT_THAT(error.what(),
              HasSubstr("cannot fetch " + server.host() + "/test/static:1 from " + server.host()));
}

}  // namespace
}  // namespace imagegate::registry

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new imagegate::registry::RegistryFixtures);
  return RUN_ALL_TESTS();
}
