// Drives the real `imagegate serve` binary over real TLS with the curl and openssl command-line
// tools: routing, AdmissionReview answers, bad input, TLS versions, keep-alive, concurrency and
// graceful shutdown. Every server listens on 127.0.0.1:0 and reports its port in its startup
// log line, so test processes can run in parallel.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "testutil/admission_review.h"
#include "testutil/server_process.h"
#include "testutil/shell.h"
#include "testutil/tls_client.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace imagegate::testutil;  // NOLINT: test helpers

// Generous limits: only for liveness, never to measure speed.
constexpr seconds kExitTimeout{20};
constexpr long kMaxRequestBytes = 1024 * 1024;

const fs::path kDataDir = fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/admission";

constexpr const char* kPolicies = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: test-enforce
spec:
  action: Enforce
  rules:
    - name: non-root
      runAsNonRoot: {}
    - name: no-privileged
      privileged:
        allowed: false
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: test-audit
spec:
  action: Audit
  rules:
    - name: ro-rootfs
      readOnlyRootFilesystem: {}
)";

struct HttpResult {
  int curlExit = -1;
  int status = 0;
  std::string headers;
  std::string body;
  std::string log;  ///< curl's stderr (with -v: the connection trace).

  json bodyJson() const { return json::parse(body, nullptr, false); }
};

class ServerIntegrationTest : public ServeSuite {
 protected:
  static void SetUpTestSuite() {
    startSuite("server-test", kPolicies,
               {"--max-request-bytes", std::to_string(kMaxRequestBytes), "--log-level", "debug",
                "--threads", "2"});
  }

  static std::string url(const std::string& pathAndQuery, int port = 0) {
    return "https://127.0.0.1:" + std::to_string(port ? port : server_->port) + pathAndQuery;
  }

  /// Runs curl against the test CA (verifying the certificate) with `args`.
  static HttpResult curl(const std::vector<std::string>& args) {
    const int id = ++curlCounter_;
    const fs::path base = dir_ / ("curl-" + std::to_string(id));
    const fs::path body = base.string() + ".body";
    const fs::path headers = base.string() + ".headers";
    const fs::path log = base.string() + ".log";
    std::string command = "curl -sS --max-time 30 --cacert " + shellQuote((dir_ / "ca.crt")) +
                          " -o " + shellQuote(body) + " -D " + shellQuote(headers) +
                          " -w '%{http_code}'";
    for (const auto& arg : args) command += " " + shellQuote(arg);
    command += " 2>" + shellQuote(log);
    const CommandResult run = runCommand(command);
    HttpResult result;
    result.curlExit = run.exitCode;
    // With several URLs curl prints one code per transfer; the last one is what tests check.
    const std::string codes = run.output;
    if (codes.size() >= 3) result.status = std::atoi(codes.substr(codes.size() - 3).c_str());
    result.headers = readFile(headers);
    result.body = readFile(body);
    result.log = readFile(log);
    return result;
  }

  static HttpResult postReview(const fs::path& file, const std::string& query = "",
                               const std::string& contentType = "application/json") {
    return curl({"-H", "Content-Type: " + contentType, "--data-binary", "@" + file.string(),
                 url("/validate" + query)});
  }

  static HttpResult postReviewText(const std::string& body, const std::string& query = "") {
    const fs::path file = dir_ / ("body-" + std::to_string(++curlCounter_) + ".json");
    writeFile(file, body);
    return postReview(file, query);
  }

  /// After every bad input: the server must still be alive and serving.
  static void expectStillServing() {
    const HttpResult health = curl({url("/healthz")});
    EXPECT_EQ(health.status, 200) << health.log;
    EXPECT_EQ(health.body, "ok\n");
    EXPECT_TRUE(server_->running());
  }

  static inline std::atomic<int> curlCounter_{0};
};

/// A pod that passes the Enforce policy (non-root, not privileged) but not the Audit one (its
/// root filesystem is writable).
std::string auditOnlyPod(const std::string& uid) {
  return podAdmissionReview({.uid = uid,
                             .containers = json::array(
                                 {podContainer("worker", "registry.example.com/jobs/worker:1.0",
                                               {{"securityContext", {{"privileged", false}}}})}),
                             .podName = "worker",
                             .namespaceName = "jobs",
                             .podSecurityContext = {{"runAsNonRoot", true}, {"runAsUser", 1000}}})
      .dump();
}

TEST_F(ServerIntegrationTest, HealthzAndReadyzAnswerOk) {
  const HttpResult health = curl({url("/healthz")});
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  const HttpResult ready = curl({url("/readyz")});
  EXPECT_EQ(ready.status, 200);
  // Then what is loaded: the certificate's expiry and the policy revision (reload_test).
  EXPECT_THAT(ready.body, StartsWith("ok\ncertificateNotAfter: 20"));
  EXPECT_THAT(ready.body, HasSubstr("\npolicyRevision: "));
}

TEST_F(ServerIntegrationTest, AllowsCompliantPod) {
  const HttpResult result = postReview(kDataDir / "pod-allow.json");
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  const json review = result.bodyJson();
  ASSERT_TRUE(review.is_object()) << result.body;
  EXPECT_EQ(review["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(review["kind"], "AdmissionReview");
  EXPECT_EQ(review["response"]["uid"], "6f1d3c8e-2b7a-4f0e-8d1c-5a9b7e3f2a10");
  EXPECT_EQ(review["response"]["allowed"], true);
  EXPECT_FALSE(review["response"].contains("status"));
  EXPECT_THAT(result.headers, HasSubstr("application/json"));
}

TEST_F(ServerIntegrationTest, DeniesNonCompliantPodNamingPolicyRuleAndContainer) {
  const HttpResult result = postReview(kDataDir / "pod-deny.json");
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  const json response = result.bodyJson()["response"];
  EXPECT_EQ(response["uid"], "b0c1a2f4-3c55-4a50-9e6a-0d0f4a6f2c11");
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 403);
  const std::string message = response["status"]["message"];
  EXPECT_THAT(message, HasSubstr("test-enforce"));
  EXPECT_THAT(message, HasSubstr("non-root"));
  EXPECT_THAT(message, HasSubstr("no-privileged"));
  EXPECT_THAT(message, HasSubstr("\"app\""));
  EXPECT_THAT(message, HasSubstr("\"sidecar\""));
  // The Audit policy still reports alongside the denial.
  ASSERT_TRUE(response.contains("warnings"));
  EXPECT_THAT(response["warnings"][0].get<std::string>(), HasSubstr("test-audit"));
}

TEST_F(ServerIntegrationTest, AuditFindingsAreWarningsWhileAllowed) {
  const HttpResult result = postReviewText(auditOnlyPod("audit-uid-1234"));
  ASSERT_EQ(result.status, 200) << result.body << result.log;
  const json response = result.bodyJson()["response"];
  EXPECT_EQ(response["uid"], "audit-uid-1234");
  EXPECT_EQ(response["allowed"], true);
  ASSERT_TRUE(response.contains("warnings")) << result.body;
  ASSERT_FALSE(response["warnings"].empty());
  EXPECT_THAT(response["warnings"][0].get<std::string>(), HasSubstr("test-audit/ro-rootfs"));
  // The API server prefixes each key with the webhook's name; the key itself is the policy.
  ASSERT_TRUE(response.contains("auditAnnotations")) << result.body;
  EXPECT_THAT(response["auditAnnotations"]["test-audit"].get<std::string>(),
              HasSubstr("ro-rootfs"));
}

TEST_F(ServerIntegrationTest, EchoesEachRequestUid) {
  for (const std::string uid : {"a", "0f0e0d0c-uid-echo", "ünïcode-uid"}) {
    const HttpResult result = postReviewText(auditOnlyPod(uid));
    ASSERT_EQ(result.status, 200) << result.body;
    EXPECT_EQ(result.bodyJson()["response"]["uid"], uid);
  }
}

TEST_F(ServerIntegrationTest, AcceptsTimeoutQueryParameter) {
  for (const std::string query : {"?timeout=5s", "?timeout=30s", "?timeout=bogus", "?x=1"}) {
    const HttpResult result = postReview(kDataDir / "pod-allow.json", query);
    EXPECT_EQ(result.status, 200) << query << ": " << result.body;
    EXPECT_EQ(result.bodyJson()["response"]["allowed"], true) << query;
  }
}

TEST_F(ServerIntegrationTest, AcceptsJsonContentTypeWithParameters) {
  const HttpResult result =
      postReview(kDataDir / "pod-allow.json", "", "application/json; charset=utf-8");
  EXPECT_EQ(result.status, 200) << result.body;
}

TEST_F(ServerIntegrationTest, NonJsonBodyIs400) {
  const HttpResult result = postReview(kDataDir / "malformed-not-json.txt");
  EXPECT_EQ(result.status, 400);
  EXPECT_THAT(result.body, HasSubstr("JSON"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, JsonThatIsNotAnAdmissionReviewIs400) {
  for (const std::string body : {R"({"a":1})", "[]", "42", R"({"kind":"Pod","apiVersion":"v1"})"}) {
    const HttpResult result = postReviewText(body);
    EXPECT_EQ(result.status, 400) << body << ": " << result.body;
    EXPECT_FALSE(result.body.empty());
  }
  expectStillServing();
}

TEST_F(ServerIntegrationTest, MissingUidIs400) {
  const HttpResult result = postReview(kDataDir / "malformed-missing-uid.json");
  EXPECT_EQ(result.status, 400);
  EXPECT_THAT(result.body, HasSubstr("uid"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, WrongTypesAreDeniedWithAMessage) {
  const HttpResult result = postReview(kDataDir / "malformed-wrong-types.json");
  ASSERT_EQ(result.status, 200) << result.body;
  const json response = result.bodyJson()["response"];
  EXPECT_EQ(response["uid"], "c3f5e7a9-0b2d-4f6a-8c1e-3a5b7d9f1e23");
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 400);
  EXPECT_THAT(response["status"]["message"].get<std::string>(), HasSubstr("image"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, DeeplyNestedJsonIs400) {
  const HttpResult result = postReviewText(std::string(100'000, '['));
  EXPECT_EQ(result.status, 400) << result.body;
  expectStillServing();
}

TEST_F(ServerIntegrationTest, BodyOverLimitIs413) {
  // Over 1 MiB curl sends "Expect: 100-continue" and waits for our verdict before uploading.
  const HttpResult withExpect =
      postReviewText(std::string(static_cast<std::size_t>(kMaxRequestBytes) * 2, ' '));
  EXPECT_EQ(withExpect.status, 413) << withExpect.body << withExpect.log;
  EXPECT_THAT(withExpect.body, HasSubstr("too large"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, BodyOverLimitWithoutExpectIs413) {
  // Without Expect the client is mid-upload when the 413 goes out; the answer must still arrive.
  const fs::path file = dir_ / "over-limit.json";
  writeFile(file, std::string(static_cast<std::size_t>(kMaxRequestBytes) + 4096, ' '));
  const HttpResult result = curl({"-H", "Expect:", "-H", "Content-Type: application/json",
                                  "--data-binary", "@" + file.string(), url("/validate")});
  EXPECT_EQ(result.status, 413) << result.body << result.log;
  expectStillServing();
}

TEST_F(ServerIntegrationTest, WrongContentTypeIs415) {
  EXPECT_EQ(postReview(kDataDir / "pod-allow.json", "", "text/plain").status, 415);
  EXPECT_EQ(postReview(kDataDir / "pod-allow.json", "", "application/jsonx").status, 415);
  // curl's default for --data is application/x-www-form-urlencoded.
  const HttpResult form =
      curl({"--data-binary", "@" + (kDataDir / "pod-allow.json").string(), url("/validate")});
  EXPECT_EQ(form.status, 415);
  EXPECT_THAT(form.body, HasSubstr("application/json"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, WrongMethodOnValidateIs405WithAllow) {
  const HttpResult get = curl({url("/validate")});
  EXPECT_EQ(get.status, 405);
  EXPECT_THAT(get.headers, HasSubstr("Allow: POST"));
  const HttpResult put =
      curl({"-X", "PUT", "-H", "Content-Type: application/json", "--data", "{}", url("/validate")});
  EXPECT_EQ(put.status, 405);
  expectStillServing();
}

TEST_F(ServerIntegrationTest, UnknownPathIs404) {
  EXPECT_EQ(curl({url("/nope")}).status, 404);
  EXPECT_EQ(curl({"-H", "Content-Type: application/json", "--data", "{}", url("/validat")}).status,
            404);
  expectStillServing();
}

TEST_F(ServerIntegrationTest, MalformedHttpIs400) {
  // Raw bytes through openssl s_client: a request line that is not HTTP.
  const fs::path request = dir_ / "garbage-request.txt";
  writeFile(request, "THIS IS NOT HTTP\r\n\r\n");
  const CommandResult result = runCommand(
      "timeout 20 openssl s_client -quiet -connect 127.0.0.1:" + std::to_string(server_->port) +
      " -CAfile " + shellQuote(dir_ / "ca.crt") + " < " + shellQuote(request) + " 2>/dev/null");
  EXPECT_THAT(result.output, HasSubstr("HTTP/1.1 400"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, RefusesTls11AndAcceptsTls12And13) {
  const HttpResult tls11 = curl({"--tls-max", "1.1", url("/healthz")});
  EXPECT_NE(tls11.curlExit, 0) << tls11.log;
  // The client's own security level forbids TLS 1.1 too; lower it so the refusal seen is the
  // server's (a protocol_version alert, no cipher agreed).
  const CommandResult forced =
      runCommand("timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(server_->port) +
                 " -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1");
  EXPECT_NE(forced.exitCode, 0);
  EXPECT_THAT(forced.output, HasSubstr("Cipher is (NONE)"));

  const HttpResult tls12 = curl({"--tlsv1.2", "--tls-max", "1.2", "-v", url("/healthz")});
  EXPECT_EQ(tls12.status, 200) << tls12.log;
  EXPECT_THAT(tls12.log, HasSubstr("TLSv1.2"));
  const HttpResult tls13 = curl({"--tlsv1.3", "-v", url("/healthz")});
  EXPECT_EQ(tls13.status, 200) << tls13.log;
  EXPECT_THAT(tls13.log, HasSubstr("TLSv1.3"));
  expectStillServing();
}

TEST_F(ServerIntegrationTest, KeepAliveReusesTheConnection) {
  // Every URL on one curl command line gets the same options: three POSTs, one connection.
  const HttpResult result = curl({"-v", "-H", "Content-Type: application/json", "--data-binary",
                                  "@" + (kDataDir / "pod-allow.json").string(), url("/validate"),
                                  url("/validate"), url("/validate?timeout=5s")});
  EXPECT_EQ(result.curlExit, 0) << result.log;
  EXPECT_EQ(result.status, 200);
  EXPECT_THAT(result.log, HasSubstr("Re-using existing connection"));
  EXPECT_THAT(result.log, Not(HasSubstr("Connection died")));
}

TEST_F(ServerIntegrationTest, AnswersManyConcurrentRequests) {
  constexpr int kClients = 50;
  const fs::path out = dir_ / "concurrent";
  fs::create_directories(out);
  std::string script;
  for (int i = 0; i < kClients; ++i) {
    const std::string n = std::to_string(i);
    script += "curl -sS --max-time 60 --cacert " + shellQuote(dir_ / "ca.crt") +
              " -H 'Content-Type: application/json' --data-binary @" +
              shellQuote(kDataDir / (i % 2 ? "pod-deny.json" : "pod-allow.json")) + " -o " +
              shellQuote(out / (n + ".body")) + " -w '%{http_code}' " + url("/validate") + " >" +
              shellQuote(out / (n + ".code")) + " 2>&1 &\n";
  }
  script += "wait\n";
  writeFile(dir_ / "concurrent.sh", script);
  ASSERT_EQ(runCommand("bash " + shellQuote(dir_ / "concurrent.sh")).exitCode, 0);
  for (int i = 0; i < kClients; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(readFile(out / (n + ".code")), "200") << "client " << i;
    const json review = json::parse(readFile(out / (n + ".body")), nullptr, false);
    ASSERT_TRUE(review.is_object()) << "client " << i;
    EXPECT_EQ(review["response"]["allowed"], i % 2 == 0) << "client " << i;
  }
  expectStillServing();
}

TEST_F(ServerIntegrationTest, SigtermDrainsThenExitsAfterInFlightRequestCompletes) {
  ServerProcess server =
      startServer(dir_, "drain-server", {"--drain-period", "3s", "--first-request-timeout", "60s"});
  // An upload whose second half comes 4 s later: still in flight when SIGTERM arrives and when
  // the drain period ends and the acceptor closes.
  const std::string review = readFile(kDataDir / "pod-allow.json");
  TlsClient client(server.port, dir_ / "ca.crt", seconds(60));
  ASSERT_TRUE(
      client.send("POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                  "application/json\r\nContent-Length: " +
                  std::to_string(review.size()) + "\r\n\r\n" + review.substr(0, 200)));
  std::string output;
  std::thread uploader([&] {
    std::this_thread::sleep_for(seconds(4));
    client.send(review.substr(200));
    output = client.readResponse();
  });
  ASSERT_TRUE(waitFor([&] { return establishedConnections(server.port) > 0; }, seconds(20)));

  server.child->signal(SIGTERM);
  EXPECT_TRUE(
      waitFor([&] { return curl({url("/readyz", server.port)}).status == 503; }, seconds(10)))
      << "/readyz should say 503 while draining";

  uploader.join();
  EXPECT_THAT(output, HasSubstr("\"allowed\":true"));
  EXPECT_THAT(output, StartsWith("HTTP/1.1 200"));

  const auto serverExit = server.child->waitExit(kExitTimeout);
  ASSERT_TRUE(serverExit.has_value()) << "server still running after SIGTERM:\n" << server.log();
  EXPECT_EQ(*serverExit, 0) << server.log();
  EXPECT_THAT(server.log(), HasSubstr("imagegate stopped"));
}

TEST_F(ServerIntegrationTest, SigtermClosesIdleKeepAliveConnectionsPromptly) {
  // Long read and shutdown timeouts: if idle connections were not closed at shutdown, the
  // process would outlive kExitTimeout.
  ServerProcess server =
      startServer(dir_, "idle-server", {"--read-timeout", "60s", "--shutdown-timeout", "60s"});
  const fs::path clientOut = dir_ / "idle-client.out";
  auto idle = startChild(
      {"openssl", "s_client", "-quiet", "-connect", "127.0.0.1:" + std::to_string(server.port),
       "-CAfile", (dir_ / "ca.crt").string()},
      clientOut, true);
  // One request, then the connection sits idle between requests (stdin stays open).
  idle->writeStdin("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(
      waitFor([&] { return readFile(clientOut).find("ok") != std::string::npos; }, seconds(20)))
      << readFile(clientOut);

  server.child->signal(SIGTERM);
  const auto serverExit = server.child->waitExit(kExitTimeout);
  ASSERT_TRUE(serverExit.has_value()) << server.log();
  EXPECT_EQ(*serverExit, 0);
}

TEST_F(ServerIntegrationTest, AtTheConnectionLimitAClientThatSentNothingMakesRoom) {
  ServerProcess server = startServer(dir_, "limit-server", {"--max-connections", "1"});
  // -no_ign_eof: s_client hangs up when we close its stdin. It handshakes and sends nothing.
  auto holder = startChild(
      {"openssl", "s_client", "-quiet", "-no_ign_eof", "-connect",
       "127.0.0.1:" + std::to_string(server.port), "-CAfile", (dir_ / "ca.crt").string()},
      dir_ / "holder.out", true);
  ASSERT_TRUE(waitFor([&] { return establishedConnections(server.port) > 0; }, seconds(20)));
  EXPECT_TRUE(
      waitFor([&] { return curl({url("/healthz", server.port)}).status == 200; }, seconds(20)));
  EXPECT_THAT(server.log(), HasSubstr("connection limit reached"));
  holder->closeStdin();
  holder->waitExit(seconds(20));
}

}  // namespace
