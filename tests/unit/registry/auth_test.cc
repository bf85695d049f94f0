#include "registry/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace imagegate::registry {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

// --- WWW-Authenticate -------------------------------------------------------------------------

TEST(RegistryAuth, ParsesDockerRegistryBearerChallenge) {
  const auto challenges = parseWwwAuthenticate(
      R"(Bearer realm="http://127.0.0.1:5001/token",service="envcheck-registry",scope="repository:test/static:pull")");
  ASSERT_EQ(challenges.size(), 1u);
  EXPECT_TRUE(challenges[0].isBearer());
  EXPECT_EQ(challenges[0].param("realm"), "http://127.0.0.1:5001/token");
  EXPECT_EQ(challenges[0].param("service"), "envcheck-registry");
  EXPECT_EQ(challenges[0].param("scope"), "repository:test/static:pull");
  EXPECT_EQ(challenges[0].param("missing"), "");
}

TEST(RegistryAuth, QuotedValuesKeepCommasAndEscapes) {
  const auto challenges = parseWwwAuthenticate(
      R"(bearer Realm = "https://auth.example/token" , scope="repository:a/b:pull,push", error="say \"hi\"")");
  ASSERT_EQ(challenges.size(), 1u);
  EXPECT_EQ(challenges[0].scheme, "bearer");
  EXPECT_EQ(challenges[0].param("realm"), "https://auth.example/token");
  EXPECT_EQ(challenges[0].param("scope"), "repository:a/b:pull,push");
  EXPECT_EQ(challenges[0].param("error"), "say \"hi\"");
}

TEST(RegistryAuth, BasicAndMultipleChallenges) {
  const auto basic = parseWwwAuthenticate(R"(Basic realm="envcheck-realm")");
  ASSERT_EQ(basic.size(), 1u);
  EXPECT_TRUE(basic[0].isBasic());
  EXPECT_EQ(basic[0].param("realm"), "envcheck-realm");

  const auto both = parseWwwAuthenticate(
      R"(Basic realm="r", Bearer realm="https://a/token",service="s", Negotiate)");
  ASSERT_EQ(both.size(), 3u);
  EXPECT_TRUE(both[0].isBasic());
  EXPECT_TRUE(both[1].isBearer());
  EXPECT_EQ(both[1].param("service"), "s");
  EXPECT_EQ(both[2].scheme, "negotiate");
  const auto preferred = preferredChallenge(both);
  ASSERT_TRUE(preferred);
  EXPECT_TRUE(preferred->isBearer());
  EXPECT_FALSE(preferredChallenge(parseWwwAuthenticate("Negotiate")));
}

TEST(RegistryAuth, UnquotedValues) {
  const auto challenges = parseWwwAuthenticate("Bearer realm=https://a.example/token,service=reg");
  EXPECT_EQ(challenges[0].param("realm"), "https://a.example/token");
  EXPECT_EQ(challenges[0].param("service"), "reg");
}

TEST(RegistryAuth, HostileChallengesAreRejected) {
  const std::string secretish = "SECRETVALUE";
  for (const std::string& header : {
           std::string(""),
           std::string("   "),
           std::string(R"(Bearer realm="unterminated)"),
           std::string(R"(Bearer realm="x\)"),
           std::string("Bearer realm=\"a\x01" + secretish + "\""),
           std::string(R"(Bearer realm="a" service="b")"),  // missing comma
           std::string(R"(Bearer realm="a",realm="b")"),    // duplicate
           std::string(R"(Bearer ="a")"),
           std::string(R"("Bearer" realm="a")"),
           std::string(R"(Bearer;realm="a")"),
           std::string(9000, 'A'),
       }) {
    try {
      parseWwwAuthenticate(header);
      ADD_FAILURE() << "accepted: " << header.substr(0, 60);
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), Not(HasSubstr(secretish)));
      EXPECT_THAT(e.what(), HasSubstr("WWW-Authenticate"));
    }
  }
  std::string manyParams = "Bearer ";
  for (int i = 0; i < 40; ++i) {
    manyParams += "p" + std::to_string(i) + "=x,";
  }
  EXPECT_THROW(parseWwwAuthenticate(manyParams), Error);
  std::string manyChallenges;
  for (int i = 0; i < 40; ++i) {
    manyChallenges += "Basic realm=x, ";
  }
  EXPECT_THROW(parseWwwAuthenticate(manyChallenges), Error);
}

// --- token responses --------------------------------------------------------------------------

TEST(RegistryAuth, TokenResponse) {
  const auto both = parseTokenResponse(R"({"token":"abc","access_token":"abc","expires_in":300})");
  EXPECT_EQ(both.token, "abc");
  EXPECT_EQ(both.expiresIn, seconds(300));
  const auto oauth = parseTokenResponse(R"({"access_token":"xyz"})");
  EXPECT_EQ(oauth.token, "xyz");
  EXPECT_EQ(oauth.expiresIn, seconds(60));  // the spec's default
  EXPECT_EQ(parseTokenResponse(R"({"token":"t","expires_in":0})").expiresIn, seconds(60));
  EXPECT_EQ(parseTokenResponse(R"({"token":"t","expires_in":null})").expiresIn, seconds(60));
  EXPECT_EQ(parseTokenResponse(R"({"token":"t","expires_in":12.7})").expiresIn, seconds(12));
}

TEST(RegistryAuth, BadTokenResponses) {
  for (const char* body :
       {"", "{", "[]", "{}", R"({"token":""})", R"({"token":5})", R"({"access_token":["x"]})",
        R"({"token":"t","expires_in":"300"})", "{\"token\":\"a\\r\\nX-Injected: 1\"}",
        R"({"token":"a b"})", R"({"token":"t","expires_in":1e400})"}) {
    EXPECT_THROW(parseTokenResponse(body), Error) << body;
  }
}

// --- token cache ------------------------------------------------------------------------------

TEST(RegistryAuth, TokenCacheExpiresEarly) {
  TokenCache cache;
  const auto t0 = SteadyClock::time_point{} + std::chrono::hours(1);
  cache.put("https://a/token", "svc", "repository:x:pull", {"tok", seconds(60)}, t0);
  EXPECT_EQ(cache.get("https://a/token", "svc", "repository:x:pull", t0), "tok");
  EXPECT_EQ(cache.get("https://a/token", "svc", "repository:x:pull", t0 + seconds(50)), "tok");
  // Renewed before the server's expiry, so a token never dies between lookup and use.
  EXPECT_FALSE(cache.get("https://a/token", "svc", "repository:x:pull", t0 + seconds(55)));
  EXPECT_FALSE(cache.get("https://a/token", "svc", "repository:y:pull", t0));
  EXPECT_FALSE(cache.get("https://a/token", "other", "repository:x:pull", t0));
  EXPECT_FALSE(cache.get("https://b/token", "svc", "repository:x:pull", t0));
  cache.erase("https://a/token", "svc", "repository:x:pull");
  EXPECT_FALSE(cache.get("https://a/token", "svc", "repository:x:pull", t0));
}

TEST(RegistryAuth, TokenCacheIsBounded) {
  TokenCache cache(3);
  const auto t0 = SteadyClock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 10; ++i) {
    cache.put("r", "s", "scope" + std::to_string(i), {"t", seconds(60 + i)}, t0);
  }
  EXPECT_LE(cache.size(), 3u);
  EXPECT_EQ(cache.get("r", "s", "scope9", t0), "t");  // the newest survives
}

// --- base64 -----------------------------------------------------------------------------------

TEST(RegistryAuth, Base64RoundTrip) {
  EXPECT_EQ(base64Encode("testuser:testpass"), "dGVzdHVzZXI6dGVzdHBhc3M=");
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("a"), "YQ==");
  for (const std::string text : {"", "a", "ab", "abc", "abcd", "user:p@ss:word", "\xff\x00\x01"}) {
    EXPECT_EQ(base64Decode(base64Encode(text)), text);
  }
}

TEST(RegistryAuth, Base64RejectsBadInput) {
  for (const char* bad : {"YQ", "YQ=", "Y===", "====", "YQ==YQ==", "Y Q==", " YQ==", "YQ==\n",
                          "YQ-_", "!!!!", "dGVzdA=a"}) {
    EXPECT_FALSE(base64Decode(bad)) << bad;
  }
  EXPECT_EQ(base64Decode(""), "");
}

// --- docker config.json -----------------------------------------------------------------------

TEST(RegistryAuth, DockerConfigForms) {
  const DockerConfig config = DockerConfig::parse(R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
      "registry.internal:5000": {"username": "u", "password": "p"},
      "https://ghcr.io": {"identitytoken": "refresh-me"},
      "http://Mixed.Case:8443/v2/": {"auth": "dTpwOmM="},
      "empty.example": {}
    },
    "credsStore": "desktop",
    "psFormat": "table"
  })");
  EXPECT_EQ(config.size(), 4u);
  const auto hub = config.find("docker.io");
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->username, "hub");
  EXPECT_EQ(hub->password, "hubpass");
  EXPECT_EQ(config.find("index.docker.io")->username, "hub");
  EXPECT_EQ(config.find("registry-1.docker.io")->username, "hub");
  EXPECT_EQ(config.find("registry.internal:5000")->password, "p");
  EXPECT_FALSE(config.find("registry.internal"));  // the port is part of the identity
  EXPECT_EQ(config.find("ghcr.io")->identityToken, "refresh-me");
  EXPECT_EQ(config.find("mixed.case:8443")->password, "p:c");  // only the first colon splits
  EXPECT_FALSE(config.find("empty.example"));
  EXPECT_FALSE(config.find("quay.io"));
}

TEST(RegistryAuth, DockerConfigCanonicalKeyWins) {
  const DockerConfig config = DockerConfig::parse(R"({"auths": {
      "docker.io": {"username": "canonical", "password": "x"},
      "https://index.docker.io/v1/": {"username": "alias", "password": "y"}}})");
  EXPECT_EQ(config.find("docker.io")->username, "canonical");
}

TEST(RegistryAuth, DockerConfigErrorsNeverShowSecrets) {
  const std::string secret = "c2VjcmV0OnBhc3N3b3Jk!";  // invalid base64 that looks like a secret
  for (const std::string& body :
       {std::string(R"({"auths":{"r.example":{"auth":")") + secret + "\"}}}",
        std::string(R"({"auths":{"r.example":{"auth":"bm9jb2xvbg=="}}})"),  // "nocolon"
        std::string(R"({"auths":{"r.example":{"password":5}}})"),
        std::string(R"({"auths":{"r.example":"x"}})"), std::string(R"({"auths":[]})"),
        std::string(R"({"auths":{)"), std::string("[]"),
        std::string(R"({"auths":{"r.example":{"auth":")") + secret + "\",\"n\":1e400}}}",
        // Cut inside the secret: the JSON library's message quotes the last token it read.
        std::string(R"({"auths":{"r.example":{"auth":")") + secret}) {
    try {
      DockerConfig::parse(body);
      ADD_FAILURE() << "accepted " << body;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), Not(HasSubstr(secret)));
      EXPECT_THAT(e.what(), Not(HasSubstr("bm9jb2xvbg")));
      EXPECT_THAT(e.what(), Not(HasSubstr("nocolon")));
    }
  }
  EXPECT_EQ(DockerConfig::parse("{}").size(), 0u);
  EXPECT_EQ(DockerConfig::parse(R"({"auths":null})").size(), 0u);
}

TEST(RegistryAuth, DockerConfigLoad) {
  const auto dir = std::filesystem::temp_directory_path() / "imagegate-registry-auth-test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "config.json").string();
  std::ofstream(path) << R"({"auths":{"127.0.0.1:5000":{"auth":"dGVzdHVzZXI6dGVzdHBhc3M="}}})";
  EXPECT_EQ(DockerConfig::load(path).find("127.0.0.1:5000")->password, "testpass");
  std::ofstream(path) << "{";
  EXPECT_THROW(DockerConfig::load(path), Error);
  EXPECT_THROW(DockerConfig::load((dir / "missing.json").string()), Error);
  std::filesystem::remove_all(dir);
}

TEST(RegistryAuth, NormalizeHost) {
  EXPECT_EQ(normalizeRegistryHost("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(normalizeRegistryHost("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(normalizeRegistryHost("HTTP://Reg.Example:5000/v2/"), "reg.example:5000");
  EXPECT_EQ(normalizeRegistryHost("ghcr.io"), "ghcr.io");
}

TEST(RegistryAuth, BasicAuthorization) {
  EXPECT_EQ(basicAuthorization({"testuser", "testpass", ""}), "Basic dGVzdHVzZXI6dGVzdHBhc3M=");
}

}  // namespace
}  // namespace imagegate::registry
