#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "common/duration.h"
#include "common/glob.h"

namespace imagegate {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Optional;

TEST(GlobMatch, WholeStringWithShellWildcards) {
  EXPECT_TRUE(globMatch("kube-*", "kube-system"));
  EXPECT_FALSE(globMatch("kube-*", "my-kube-system"));
  EXPECT_TRUE(globMatch("team-?", "team-a"));
  EXPECT_FALSE(globMatch("team-?", "team-ab"));
  EXPECT_TRUE(globMatch("team-[ab]", "team-b"));
  EXPECT_FALSE(globMatch("team-[!ab]", "team-b"));
  EXPECT_TRUE(globMatch("prod", "prod"));
  EXPECT_FALSE(globMatch("prod", "production"));
}

TEST(GlobMatch, StarCrossesSlashes) {
  EXPECT_TRUE(globMatch("acme/*", "acme/team/app:1"));
  EXPECT_TRUE(globMatch("*", ""));
}

TEST(GlobMatch, BackslashEscapesWildcards) {
  EXPECT_TRUE(globMatch("a\\*", "a*"));
  EXPECT_FALSE(globMatch("a\\*", "ab"));
}

TEST(GlobProblem, AcceptsUsualPatterns) {
  EXPECT_EQ(globProblem("*"), std::nullopt);
  EXPECT_EQ(globProblem("registry.example.com/*"), std::nullopt);
  EXPECT_EQ(globProblem("team-[a-z]"), std::nullopt);
  EXPECT_EQ(globProblem("[]]"), std::nullopt);  // ']' first in a bracket is a member
  EXPECT_EQ(globProblem("[!]]"), std::nullopt);
  EXPECT_EQ(globProblem("a\\[b"), std::nullopt);
}

TEST(GlobProblem, RejectsUnusablePatterns) {
  EXPECT_THAT(globProblem(""), Optional(HasSubstr("empty pattern")));
  EXPECT_THAT(globProblem("kube system"), Optional(HasSubstr("whitespace")));
  EXPECT_THAT(globProblem("a\tb"), Optional(HasSubstr("whitespace")));
  EXPECT_THAT(globProblem("team-[ab"), Optional(HasSubstr("unbalanced '['")));
  EXPECT_THAT(globProblem("[]"), Optional(HasSubstr("unbalanced '['")));
  EXPECT_THAT(globProblem("abc\\"), Optional(HasSubstr("lone backslash")));
}

TEST(ImageGlobMatch, StarMatchesEverything) {
  EXPECT_TRUE(imageGlobMatch("*", "docker.io/library/nginx:latest"));
  EXPECT_TRUE(imageGlobMatch("*", "localhost:5000/x@sha256:abc"));
}

TEST(ImageGlobMatch, HostAndPathMatchedSeparately) {
  EXPECT_TRUE(imageGlobMatch("registry.example.com/*", "registry.example.com/team/app:1"));
  EXPECT_TRUE(imageGlobMatch("ghcr.io/acme/*", "ghcr.io/acme/app:2"));
  EXPECT_FALSE(imageGlobMatch("ghcr.io/acme/*", "ghcr.io/acme-evil/app:2"));
  EXPECT_TRUE(imageGlobMatch("docker.io/library/nginx:*", "docker.io/library/nginx:1.27"));
  EXPECT_FALSE(imageGlobMatch("docker.io/library/nginx:*", "docker.io/library/nginx-evil:1"));
}

TEST(ImageGlobMatch, RegistryGlobNeverMatchesALongerHostName) {
  EXPECT_FALSE(imageGlobMatch("registry.example.com/*", "registry.example.com.evil.io/x:1"));
  EXPECT_FALSE(imageGlobMatch("registry.example.com", "registry.example.com.evil.io/x:1"));
  EXPECT_FALSE(imageGlobMatch("registry.example.com/*", "registry.example.com:5000/x:1"));
  // A host wildcard stays inside the host: it cannot swallow the '/' into the path.
  EXPECT_FALSE(imageGlobMatch("*.example.com/*", "evil.io/x.example.com/y:1"));
  EXPECT_TRUE(imageGlobMatch("*.example.com/*", "eu.registry.example.com/y:1"));
}

TEST(ImageGlobMatch, PatternWithoutSlashNamesHostsOnly) {
  EXPECT_TRUE(imageGlobMatch("docker.io", "docker.io/library/nginx:latest"));
  EXPECT_TRUE(imageGlobMatch("*.gcr.io", "k8s.gcr.io/pause:3.9"));
  EXPECT_FALSE(imageGlobMatch("nginx", "docker.io/library/nginx:latest"));
  EXPECT_FALSE(imageGlobMatch("docker.io", "ghcr.io/docker.io/x:1"));
}

TEST(ImageGlobMatch, HostComparisonIgnoresCase) {
  // DNS is case-insensitive and runtimes pull "K8S.GCR.IO/x" from k8s.gcr.io.
  EXPECT_TRUE(imageGlobMatch("k8s.gcr.io/*", "K8S.GCR.IO/pause:3.9"));
  EXPECT_TRUE(imageGlobMatch("k8s.gcr.io", "K8s.Gcr.Io/pause:3.9"));
  // The path is case-sensitive, like repositories and tags.
  EXPECT_FALSE(imageGlobMatch("ghcr.io/acme/app:v1", "ghcr.io/acme/app:V1"));
}

TEST(ParseGoDuration, UnitsAndCombinations) {
  EXPECT_THAT(parseGoDuration("10s"), Optional(milliseconds(10000)));
  EXPECT_THAT(parseGoDuration("1m30s"), Optional(milliseconds(90000)));
  EXPECT_THAT(parseGoDuration("500ms"), Optional(milliseconds(500)));
  EXPECT_THAT(parseGoDuration("1.5s"), Optional(milliseconds(1500)));
  EXPECT_THAT(parseGoDuration("1h"), Optional(milliseconds(3600000)));
  EXPECT_THAT(parseGoDuration("2500us"), Optional(milliseconds(3)));
  EXPECT_THAT(parseGoDuration("2500\xC2\xB5s"), Optional(milliseconds(3)));
  EXPECT_THAT(parseGoDuration("1000000ns"), Optional(milliseconds(1)));
  EXPECT_THAT(parseGoDuration("0"), Optional(milliseconds(0)));
}

TEST(ParseGoDuration, RejectsMalformedAndNegative) {
  EXPECT_EQ(parseGoDuration(""), std::nullopt);
  EXPECT_EQ(parseGoDuration("10"), std::nullopt);
  EXPECT_EQ(parseGoDuration("s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("-1s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("10x"), std::nullopt);
  EXPECT_EQ(parseGoDuration("1.2.3s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("10 s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("25h"), std::nullopt);  // more than a day is not a request timeout
  EXPECT_EQ(parseGoDuration(std::string(65, '1') + "s"), std::nullopt);
}

}  // namespace
}  // namespace imagegate

#include "common/quantity.h"

namespace imagegate {
namespace {

TEST(ParseByteQuantity, KubernetesSuffixes) {
  EXPECT_EQ(parseByteQuantity("123"), 123u);
  EXPECT_EQ(parseByteQuantity("1Ki"), 1024u);
  EXPECT_EQ(parseByteQuantity("200Mi"), 200u * 1024 * 1024);
  EXPECT_EQ(parseByteQuantity("1.5Gi"), 1610612736u);
  EXPECT_EQ(parseByteQuantity("2k"), 2000u);
  EXPECT_EQ(parseByteQuantity("3M"), 3000000u);
  EXPECT_EQ(parseByteQuantity("1G"), 1000000000u);
}

TEST(ParseByteQuantity, RejectsEverythingElse) {
  for (const char* bad : {"", "Mi", "-1Mi", "1MB", "1 Mi", "1mi", "1e3", "1..2", "99999999999Ei"}) {
    EXPECT_EQ(parseByteQuantity(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace imagegate

#include "common/json_depth.h"

namespace imagegate {
namespace {

TEST(JsonNestingExceeds, CountsObjectsAndArraysButNotStrings) {
  EXPECT_FALSE(jsonNestingExceeds(R"({"a":[{"b":[]}]})", 4));
  EXPECT_TRUE(jsonNestingExceeds(R"({"a":[{"b":[[]]}]})", 4));
  EXPECT_FALSE(jsonNestingExceeds(R"({"a":"[[[[[[[[[["})", 1));
  EXPECT_FALSE(jsonNestingExceeds(R"({"a":"\"[[[[[["})", 1));
  EXPECT_TRUE(jsonNestingExceeds(std::string(100, '['), 64));
}

}  // namespace
}  // namespace imagegate

#include "common/log.h"

namespace imagegate {
namespace {

TEST(Log, EnabledFollowsTheLevel) {
  log::setLevel(log::Level::kWarn);
  EXPECT_FALSE(log::enabled(log::Level::kDebug));
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kWarn));
  EXPECT_TRUE(log::enabled(log::Level::kError));
  log::setLevel(log::Level::kInfo);
}

}  // namespace
}  // namespace imagegate

#include "common/json_parse.h"

namespace imagegate {
namespace {

TEST(TryParseJson, ParsesAndReportsEveryFailureAsAProblem) {
  JsonProblem problem;
  const auto parsed = tryParseJson(R"({"a":[1,2]})", problem);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->at("a").size(), 2u);

  EXPECT_FALSE(tryParseJson(R"({"a": tru})", problem).has_value());
  EXPECT_THAT(problem.reason, HasSubstr("syntax error"));
  EXPECT_THAT(problem.reason, ::testing::Not(HasSubstr("json.exception")));
  EXPECT_EQ(problem.byte, 10u);

  // nlohmann throws out_of_range, not parse_error, for numbers it cannot represent.
  problem = {};
  EXPECT_FALSE(tryParseJson(R"({"n": 1e400})", problem).has_value());
  EXPECT_EQ(problem.reason, "number overflow parsing '1e400'");
}

}  // namespace
}  // namespace imagegate
