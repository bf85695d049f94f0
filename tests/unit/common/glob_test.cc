#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/glob.h"

namespace imagegate {
namespace {

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

}  // namespace
}  // namespace imagegate
