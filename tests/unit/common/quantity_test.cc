#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
