#include <gtest/gtest.h>

#include "server/server.h"

namespace imagegate::server {
namespace {

TEST(ConnectionLimit, LeavesAReserveOfDescriptors) {
  // A container's usual 1024: registry connections and files keep a quarter.
  EXPECT_EQ(connectionLimitFor(1024), 768u);
  EXPECT_EQ(connectionLimitFor(2048), 1024u);
  EXPECT_EQ(connectionLimitFor(128), 96u);
  EXPECT_EQ(connectionLimitFor(64), 48u);
}

TEST(ConnectionLimit, IsCappedForHugeLimits) {
  EXPECT_EQ(connectionLimitFor(1'048'576), 1024u);
  EXPECT_EQ(reservedDescriptors(1'048'576), 256u);
}

TEST(ConnectionLimit, TinyLimitsStillAllowOneConnection) { EXPECT_EQ(connectionLimitFor(10), 1u); }

}  // namespace
}  // namespace imagegate::server
