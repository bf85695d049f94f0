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

}  // namespace
}  // namespace imagegate
