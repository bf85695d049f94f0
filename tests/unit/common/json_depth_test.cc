#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(CheckJsonShape, CountsValuesOutsideStrings) {
  // 3 openings + 2 commas + the root bound the values at 6 (there are 5: the empty object
  // counts twice).
  const std::string_view text = R"({"a":[1,2],"b":{}})";
  EXPECT_EQ(checkJsonShape(text, 64, 6), JsonShape::kWithinLimits);
  EXPECT_EQ(checkJsonShape(text, 64, 5), JsonShape::kTooManyValues);
  EXPECT_EQ(checkJsonShape(R"(["a,b,c,d,e,f"])", 64, 2), JsonShape::kWithinLimits);
  std::string bomb = "[";
  for (int i = 0; i < 1000; ++i) bomb += "{},";
  bomb += "{}]";
  EXPECT_EQ(checkJsonShape(bomb, 64, 2002), JsonShape::kTooManyValues);
  EXPECT_EQ(checkJsonShape(bomb, 64, 2003), JsonShape::kWithinLimits);
  EXPECT_EQ(checkJsonShape(std::string(100, '['), 64, 10), JsonShape::kTooManyValues);
}

}  // namespace
}  // namespace imagegate
