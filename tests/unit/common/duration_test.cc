#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "common/duration.h"

namespace imagegate {
namespace {

using std::chrono::milliseconds;
using ::testing::Optional;

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
