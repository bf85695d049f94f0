#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json_parse.h"

namespace imagegate {
namespace {

using ::testing::HasSubstr;

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
