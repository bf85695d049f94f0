#include "server/connection_table.h"

#include <gtest/gtest.h>

#include <set>

namespace imagegate::server {
namespace {

/// Records which connections the table asked to close.
struct Closed {
  std::set<int> ids;
  ConnectionTable::Closer closer(int name) {
    return [this, name] { ids.insert(name); };
  }
};

ConnectionLimits limits(std::size_t connections, std::size_t perAddress = 100,
                        std::size_t bodyBytes = 1000) {
  return ConnectionLimits{connections, perAddress, bodyBytes};
}

TEST(ConnectionTable, AdmitsUpToTheLimitWithoutEvicting) {
  ConnectionTable table(limits(3));
  Closed closed;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(table.admit("10.0.0.1", closed.closer(i)));
  EXPECT_EQ(table.size(), 3u);
  EXPECT_TRUE(closed.ids.empty());
}

TEST(ConnectionTable, FullTableEvictsTheOldestPendingConnection) {
  ConnectionTable table(limits(3));
  Closed closed;
  const auto served = table.admit("10.0.0.1", closed.closer(0));
  table.requestReceived(*served);  // completed a request, busy with it
  ASSERT_TRUE(table.admit("10.0.0.2", closed.closer(1)));
  ASSERT_TRUE(table.admit("10.0.0.3", closed.closer(2)));
  EXPECT_TRUE(table.admit("10.0.0.4", closed.closer(3)));
  EXPECT_EQ(closed.ids, std::set<int>{1});  // the oldest that never completed a request
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.evictions(), 1u);
}

TEST(ConnectionTable, WithoutPendingConnectionsTheOldestIdleOneGoes) {
  ConnectionTable table(limits(2));
  Closed closed;
  const auto a = table.admit("10.0.0.1", closed.closer(0));
  const auto b = table.admit("10.0.0.1", closed.closer(1));
  table.requestReceived(*a);
  table.requestReceived(*b);
  table.setIdle(*b, true);
  EXPECT_TRUE(table.admit("10.0.0.2", closed.closer(2)));
  EXPECT_EQ(closed.ids, std::set<int>{1});
}

TEST(ConnectionTable, RefusesWhenEveryConnectionIsBusy) {
  ConnectionTable table(limits(2));
  Closed closed;
  for (int i = 0; i < 2; ++i) table.requestReceived(*table.admit("10.0.0.1", closed.closer(i)));
  EXPECT_FALSE(table.admit("10.0.0.2", closed.closer(9)));
  EXPECT_TRUE(closed.ids.empty());
  EXPECT_EQ(table.size(), 2u);
}

TEST(ConnectionTable, OnePendingAddressCannotHoldMoreThanItsShare) {
  ConnectionTable table(limits(100, 2));
  Closed closed;
  ASSERT_TRUE(table.admit("10.0.0.9", closed.closer(0)));
  ASSERT_TRUE(table.admit("10.0.0.1", closed.closer(1)));
  ASSERT_TRUE(table.admit("10.0.0.1", closed.closer(2)));
  EXPECT_TRUE(table.admit("10.0.0.1", closed.closer(3)));
  EXPECT_EQ(closed.ids, std::set<int>{1});  // that address's oldest, not another client's
}

TEST(ConnectionTable, ServedConnectionsDoNotCountAsPendingForTheirAddress) {
  ConnectionTable table(limits(100, 1));
  Closed closed;
  table.requestReceived(*table.admit("10.0.0.1", closed.closer(0)));
  EXPECT_TRUE(table.admit("10.0.0.1", closed.closer(1)));
  EXPECT_TRUE(closed.ids.empty());
}

TEST(ConnectionTable, RemovedConnectionsFreeTheirSlot) {
  ConnectionTable table(limits(1));
  Closed closed;
  const auto id = table.admit("10.0.0.1", closed.closer(0));
  table.requestReceived(*id);
  table.remove(*id);
  table.remove(*id);  // twice is harmless (an evicted session also removes itself)
  EXPECT_TRUE(table.admit("10.0.0.1", closed.closer(1)));
  EXPECT_TRUE(closed.ids.empty());
}

TEST(ConnectionTable, BodyMemoryIsBoundedByEvictingTheOldestUnfinishedUpload) {
  ConnectionTable table(limits(10, 10, 1000));
  Closed closed;
  const auto stalled = table.admit("10.0.0.1", closed.closer(0));
  const auto reviewing = table.admit("10.0.0.1", closed.closer(1));
  const auto fresh = table.admit("10.0.0.1", closed.closer(2));
  ASSERT_TRUE(table.reserveBody(*stalled, 400));
  ASSERT_TRUE(table.reserveBody(*reviewing, 400));
  table.requestReceived(*reviewing);  // its body is in: under review, not evictable
  EXPECT_TRUE(table.reserveBody(*fresh, 400));
  EXPECT_EQ(closed.ids, std::set<int>{0});
  EXPECT_EQ(table.bodyBytesInFlight(), 800u);
}

TEST(ConnectionTable, BodyMemoryEvictsTheEarliestUploadNotTheOldestConnection) {
  // A long-lived keep-alive client sends its next small body while stalled uploads hold the
  // budget: the stalled upload that began first goes, never the keep-alive client.
  ConnectionTable table(limits(10, 10, 1000));
  Closed closed;
  const auto keepAlive = table.admit("10.0.0.1", closed.closer(0));
  table.requestReceived(*keepAlive);
  const auto stalledFirst = table.admit("10.0.0.2", closed.closer(1));
  const auto stalledNext = table.admit("10.0.0.2", closed.closer(2));
  ASSERT_TRUE(table.reserveBody(*stalledFirst, 450));
  ASSERT_TRUE(table.reserveBody(*stalledNext, 450));
  ASSERT_TRUE(table.reserveBody(*keepAlive, 100));  // fits: 1000
  const auto newcomer = table.admit("10.0.0.3", closed.closer(3));
  EXPECT_TRUE(table.reserveBody(*newcomer, 100));
  EXPECT_EQ(closed.ids, std::set<int>{1});
}

TEST(ConnectionTable, BodyMemoryRefusesWhenOnlyReviewsHoldIt) {
  ConnectionTable table(limits(10, 10, 1000));
  Closed closed;
  const auto reviewing = table.admit("10.0.0.1", closed.closer(0));
  ASSERT_TRUE(table.reserveBody(*reviewing, 900));
  table.requestReceived(*reviewing);
  const auto next = table.admit("10.0.0.1", closed.closer(1));
  EXPECT_FALSE(table.reserveBody(*next, 200));
  EXPECT_TRUE(closed.ids.empty());
  table.releaseBody(*reviewing);
  EXPECT_TRUE(table.reserveBody(*next, 200));
  EXPECT_EQ(table.bodyBytesInFlight(), 200u);
}

TEST(ConnectionTable, RemovingAConnectionReleasesItsBody) {
  ConnectionTable table(limits(10, 10, 1000));
  Closed closed;
  const auto id = table.admit("10.0.0.1", closed.closer(0));
  ASSERT_TRUE(table.reserveBody(*id, 700));
  table.remove(*id);
  EXPECT_EQ(table.bodyBytesInFlight(), 0u);
}

}  // namespace
}  // namespace imagegate::server
