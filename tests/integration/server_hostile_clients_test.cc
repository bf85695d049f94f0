// The real `imagegate serve` under clients that attack it: chunk headers that never end,
// framing it must refuse, trickled requests holding connection slots, idle floods against a
// small file descriptor limit, stalled uploads, and a review asking for a day of budget. Each
// asserts the right status, that well-behaved clients keep being served, and that memory stays
// bounded (the server's own RSS from /proc, with a generous margin). Never asserts speed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "testutil/server_process.h"
#include "testutil/shell.h"
#include "testutil/tls_client.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace imagegate::testutil;  // NOLINT: test helpers

constexpr std::size_t kMiB = 1024 * 1024;
// What a bounded server may grow by during one attack: far below the gigabytes an unbounded
// buffer reached, far above what the bounded one uses.
constexpr std::size_t kMemoryMargin = 96 * kMiB;

constexpr const char* kPolicies = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: test-enforce
spec:
  action: Enforce
  rules:
    - name: non-root
      runAsNonRoot: {}
)";

const fs::path kDataDir = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/admission";

class HostileClientsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dir_ = makeServeDir("hostile-test", kPolicies); }

  static void TearDownTestSuite() { removeTestDir(dir_); }

  ServerProcess start(const std::string& name, const std::vector<std::string>& args,
                      const std::vector<std::string>& launcher = {}) {
    return startServer(dir_, name, args, launcher);
  }

  static fs::path ca() { return dir_ / "ca.crt"; }

  /// A well-behaved client on a new connection: curl, verifying the certificate.
  static int healthStatus(int port) {
    const CommandResult result =
        runCommand("curl -s -o /dev/null --max-time 10 -w '%{http_code}' --cacert " +
                   shellQuote(ca().string()) + " https://127.0.0.1:" + std::to_string(port) +
                   "/healthz 2>/dev/null");
    return std::atoi(result.output.c_str());
  }

  static std::string postReview(int port, const fs::path& body, const std::string& query = "") {
    return runCommand("curl -s --max-time 60 --cacert " + shellQuote(ca().string()) +
                      " -H 'Content-Type: application/json' --data-binary @" +
                      shellQuote(body.string()) + " 'https://127.0.0.1:" + std::to_string(port) +
                      "/validate" + query + "' 2>&1")
        .output;
  }

  static inline fs::path dir_;
};

const std::string kChunkedHead =
    "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

struct EndlessChunk {
  const char* name;
  std::string start;  ///< After the head.
  char filler;        ///< Repeated forever.
};

class EndlessChunkTest : public HostileClientsTest,
                         public ::testing::WithParamInterface<EndlessChunk> {};

TEST_P(EndlessChunkTest, IsRefusedAtTheHeaderAndBuffersNothing) {
  ServerProcess server = start(std::string("chunk-") + GetParam().name, {});
  const std::size_t before = residentBytes(server.child->pid());
  TlsClient client(server.port, ca());
  ASSERT_TRUE(client.send(kChunkedHead + GetParam().start + std::string(4096, GetParam().filler)));
  const std::string response = client.readResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(response, HasSubstr("Content-Length"));
  EXPECT_THAT(response, HasSubstr("Connection: close"));
  // Keep sending what used to grow the server by gigabytes: the connection ends instead.
  const std::string filler(64 * 1024, GetParam().filler);
  std::size_t sent = 0;
  while (sent < 256 * kMiB && client.send(filler)) sent += filler.size();
  EXPECT_LT(sent, 256 * kMiB) << "the server kept reading an endless chunk header";
  EXPECT_LT(residentBytes(server.child->pid()), before + kMemoryMargin);
  EXPECT_EQ(healthStatus(server.port), 200);
}

INSTANTIATE_TEST_SUITE_P(Framing, EndlessChunkTest,
                         ::testing::Values(EndlessChunk{"extension", "1;ext=", 'e'},
                                           EndlessChunk{"zeros", "", '0'},
                                           EndlessChunk{"trailers", "0\r\n", 'T'}),
                         [](const auto& param) { return std::string(param.param.name); });

TEST_F(HostileClientsTest, AmbiguousTransferCodingsAreRefusedAndTheConnectionCloses) {
  ServerProcess server = start("codings", {});
  for (const char* coding : {"xchunked", "chunked, identity"}) {
    TlsClient client(server.port, ca());
    // Read as bodiless, the second request would be answered on the same connection.
    ASSERT_TRUE(client.send(std::string("POST /validate HTTP/1.1\r\nHost: localhost\r\n") +
                            "Content-Type: application/json\r\nTransfer-Encoding: " + coding +
                            "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const std::string everything = client.readAll();
    EXPECT_THAT(everything, StartsWith("HTTP/1.1 400")) << coding;
    EXPECT_EQ(everything.find("HTTP/1.1 200"), std::string::npos) << coding;
  }
}

TEST_F(HostileClientsTest, Http11RequestWithoutHostIs400) {
  ServerProcess server = start("no-host", {});
  TlsClient client(server.port, ca());
  ASSERT_TRUE(client.send("GET /healthz HTTP/1.1\r\n\r\n"));
  const std::string response = client.readAll();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(response, HasSubstr("Host"));
}

TEST_F(HostileClientsTest, BodyStartingWithAByteOrderMarkIsReadAsJson) {
  // Deliberate: RFC 8259 lets a parser ignore a leading BOM, and nlohmann_json does.
  ServerProcess server = start("bom", {});
  const fs::path body = dir_ / "bom.json";
  writeFile(body, "\xEF\xBB\xBF" + readFile(kDataDir / "pod-allow.json"));
  EXPECT_THAT(postReview(server.port, body), HasSubstr("\"allowed\":true"));
}

TEST_F(HostileClientsTest, EndlessHeaderLineIs431AndBounded) {
  ServerProcess server = start("header", {});
  const std::size_t before = residentBytes(server.child->pid());
  TlsClient client(server.port, ca());
  client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Long: ");
  const std::string filler(64 * 1024, 'a');
  std::size_t sent = 0;
  while (sent < 64 * kMiB && client.send(filler)) sent += filler.size();
  EXPECT_LT(sent, 64 * kMiB);
  EXPECT_LT(residentBytes(server.child->pid()), before + kMemoryMargin);
  EXPECT_EQ(healthStatus(server.port), 200);
}

/// Connections that finish the handshake and then trickle a header that never ends.
std::vector<std::unique_ptr<TlsClient>> slowLoris(int port, const fs::path& caFile, int count) {
  std::vector<std::unique_ptr<TlsClient>> clients;
  for (int i = 0; i < count; ++i) {
    try {
      auto client = std::make_unique<TlsClient>(port, caFile);
      client->send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
      clients.push_back(std::move(client));
    } catch (const std::exception&) {
      // Evicted before its handshake finished: what the server should do under pressure.
    }
  }
  return clients;
}

TEST_F(HostileClientsTest, SlowLorisCannotHoldEverySlot) {
  ServerProcess server = start("loris", {"--max-connections", "16", "--first-request-timeout",
                                         "60s", "--log-level", "info"});
  const auto attackers = slowLoris(server.port, ca(), 48);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(healthStatus(server.port), 200);
  EXPECT_THAT(server.log(), HasSubstr("connection limit reached"));
}

TEST_F(HostileClientsTest, OneAddressCannotHoldMoreThanItsShareOfPendingSlots) {
  ServerProcess server =
      start("per-address", {"--max-pending-per-address", "8", "--first-request-timeout", "60s"});
  const auto attackers = slowLoris(server.port, ca(), 24);
  EXPECT_EQ(healthStatus(server.port), 200);
}

TEST_F(HostileClientsTest, IdleFloodUnderASmallFileLimitNeverExhaustsDescriptors) {
  // A container's small fd limit: the connection limit follows it, so accept() never fails.
  ServerProcess server =
      start("fd-limit", {"--first-request-timeout", "60s"}, {"prlimit", "--nofile=128:128"});
  EXPECT_THAT(server.log(), HasSubstr("\"maxConnections\":96"));
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = tcpConnect(server.port);
    if (fd >= 0) idle.push_back(fd);
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(healthStatus(server.port), 200);
  EXPECT_LT(openDescriptors(server.child->pid()), 128u);
  EXPECT_EQ(server.log().find("accept failed"), std::string::npos);
  for (const int fd : idle) close(fd);
}

TEST_F(HostileClientsTest, StalledUploadsCannotHoldUnboundedMemory) {
  ServerProcess server =
      start("uploads", {"--max-request-bytes", std::to_string(kMiB), "--max-body-bytes-in-flight",
                        std::to_string(4 * kMiB), "--first-request-timeout", "60s"});
  const std::size_t before = residentBytes(server.child->pid());
  std::vector<std::unique_ptr<TlsClient>> stalled;
  const std::string part(900 * 1024, ' ');
  for (int i = 0; i < 100; ++i) {
    auto client = std::make_unique<TlsClient>(server.port, ca());
    client->send(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
        "application/json\r\nContent-Length: 1000000\r\n\r\n" +
        part);
    stalled.push_back(std::move(client));
  }
  // 100 x 900 KB would be held without the bound; 4 MiB (plus buffers) with it.
  EXPECT_LT(residentBytes(server.child->pid()), before + 48 * kMiB);
  EXPECT_THAT(postReview(server.port, kDataDir / "pod-allow.json"), HasSubstr("\"allowed\":true"));
}

TEST_F(HostileClientsTest, ReviewBudgetIsCappedWhateverTimeoutTheClientAsks) {
  // A registry that accepts and never answers, with a request timeout far beyond the cap:
  // without the cap, ?timeout=24h would hold the review until the registry request times out.
  const fs::path portFile = dir_ / "blackhole.port";
  auto blackhole =
      startChild({"/usr/bin/python3", IMAGEGATE_SOURCE_DIR "/tests/fixtures/registry/blackhole.py",
                  portFile.string(), "120"},
                 dir_ / "blackhole.log");
  ASSERT_TRUE(waitFor([&] { return !readFile(portFile).empty(); }, seconds(20)));
  const std::string registry = "127.0.0.1:" + std::to_string(std::stoi(readFile(portFile)));
  writeFile(dir_ / "registries.yaml",
            "timeouts: {connect: 60s, request: 60s}\nregistries:\n"
            "  - host: " +
                registry + "\n    insecure: true\n");
  ServerProcess server = start("budget", {"--registry-config", (dir_ / "registries.yaml").string(),
                                          "--max-review-timeout", "2s"});
  std::string review = readFile(kDataDir / "pod-allow.json");
  const std::string image = registry + "/app:1";
  // Leave the user to the image, so the rule needs the image config from the black hole.
  nlohmann::json pod = nlohmann::json::parse(review);
  pod["request"]["object"]["spec"]["securityContext"] = nlohmann::json::object();
  for (auto& container : pod["request"]["object"]["spec"]["containers"]) {
    container["image"] = image;
    container.erase("securityContext");
  }
  writeFile(dir_ / "blackhole-review.json", pod.dump());
  const auto started = std::chrono::steady_clock::now();
  const std::string answer =
      postReview(server.port, dir_ / "blackhole-review.json", "?timeout=24h");
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_THAT(answer, HasSubstr("\"allowed\":false"));
  EXPECT_LT(took, seconds(20)) << "the review waited on the registry beyond the 2s cap";
}

}  // namespace
