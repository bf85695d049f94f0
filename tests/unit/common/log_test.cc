#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
