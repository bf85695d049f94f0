#include "cache/rule_result_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace imagegate::cache {
namespace {

using policy::Finding;
using policy::Findings;
using policy::RuleStatus;

std::shared_ptr<const Findings> findingsSaying(const std::string& message) {
  return std::make_shared<const Findings>(
      Findings{Finding{RuleStatus::kFail, message, "fix it", {}}, Finding{}});
}

TEST(RuleResultCache, FindsWhatWasStoredForTheSameRevisionAndKey) {
  RuleResultCache cache(1 << 20);
  EXPECT_EQ(cache.find(1, "nginx:1"), nullptr);
  cache.store(1, "nginx:1", findingsSaying("not from an allowed registry"));
  const auto found = cache.find(1, "nginx:1");
  ASSERT_NE(found, nullptr);
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ(found->front().message, "not from an allowed registry");
  EXPECT_EQ(cache.find(1, "nginx:2"), nullptr);

  const CacheStats stats = cache.stats();
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.bytes, RuleResultCache::entryBytes("nginx:1", *found));
}

TEST(RuleResultCache, ANewRevisionDropsEveryFindingOfTheOldOne) {
  RuleResultCache cache(1 << 20);
  cache.store(1, "nginx:1", findingsSaying("old policy"));
  cache.store(1, "redis:7", findingsSaying("old policy"));
  EXPECT_EQ(cache.find(2, "nginx:1"), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  // A review still running on the old set neither reads nor writes findings any more.
  cache.store(1, "nginx:1", findingsSaying("old policy"));
  EXPECT_EQ(cache.find(1, "nginx:1"), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
  // Dropped by a reload is not evicted for room.
  EXPECT_EQ(cache.stats().evictions, 0u);
  cache.store(2, "nginx:1", findingsSaying("new policy"));
  ASSERT_NE(cache.find(2, "nginx:1"), nullptr);
  EXPECT_EQ(cache.find(2, "nginx:1")->front().message, "new policy");
}

TEST(RuleResultCache, StaysWithinItsBudgetDroppingTheLeastRecentlyUsed) {
  const auto findings = findingsSaying("same size");
  const std::size_t entry = RuleResultCache::entryBytes("image-a", *findings);
  RuleResultCache cache(3 * entry);
  cache.store(1, "image-a", findings);
  cache.store(1, "image-b", findings);
  cache.store(1, "image-c", findings);
  ASSERT_NE(cache.find(1, "image-a"), nullptr);  // now the most recently used
  cache.store(1, "image-d", findings);

  const CacheStats stats = cache.stats();
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_LE(stats.bytes, 3 * entry);
  EXPECT_EQ(cache.find(1, "image-b"), nullptr);
  EXPECT_NE(cache.find(1, "image-a"), nullptr);
  EXPECT_NE(cache.find(1, "image-c"), nullptr);
  EXPECT_NE(cache.find(1, "image-d"), nullptr);
}

TEST(RuleResultCache, FindingsLargerThanTheWholeBudgetAreNotKept) {
  const auto large = findingsSaying(std::string(4096, 'x'));
  RuleResultCache cache(1024);
  cache.store(1, "huge", large);
  EXPECT_EQ(cache.find(1, "huge"), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
}

TEST(RuleResultCache, AZeroBudgetKeepsNothing) {
  RuleResultCache cache(0);
  cache.store(1, "nginx:1", findingsSaying("x"));
  EXPECT_EQ(cache.find(1, "nginx:1"), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
}

/// Starts a findOrClaim that waits for another caller's findings, and checks it is still waiting.
std::future<policy::MemoLookup> waitingFind(RuleResultCache& cache, std::uint64_t revision,
                                            const std::string& key) {
  auto waiting = std::async(std::launch::async, [&cache, revision, key] {
    return cache.findOrClaim(revision, key, true);
  });
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "a second caller must wait for the first one's findings";
  return waiting;
}

TEST(RuleResultCache, ConcurrentLookupsOfANewKeyWaitForTheOneComputingIt) {
  RuleResultCache cache(1 << 20);
  const policy::MemoLookup first = cache.findOrClaim(1, "new-image", true);
  EXPECT_TRUE(first.claimed);
  EXPECT_EQ(first.findings, nullptr);
  auto second = waitingFind(cache, 1, "new-image");
  auto third = waitingFind(cache, 1, "new-image");
  const auto findings = findingsSaying("computed once");
  cache.store(1, "new-image", findings);
  for (auto* waiting : {&second, &third}) {
    const policy::MemoLookup found = waiting->get();
    EXPECT_FALSE(found.claimed);
    EXPECT_EQ(found.findings, findings);
  }
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 2u);
}

TEST(RuleResultCache, ACallerThatMustNotWaitGetsNothingWhileAnotherComputes) {
  RuleResultCache cache(1 << 20);
  ASSERT_TRUE(cache.findOrClaim(1, "new-image", false).claimed);
  const policy::MemoLookup other = cache.findOrClaim(1, "new-image", false);
  EXPECT_FALSE(other.claimed);
  EXPECT_EQ(other.findings, nullptr);
}

TEST(RuleResultCache, AnAbandonedClaimReleasesItsWaitersToComputeThemselves) {
  RuleResultCache cache(1 << 20);
  ASSERT_TRUE(cache.findOrClaim(1, "new-image", true).claimed);
  auto waiting = waitingFind(cache, 1, "new-image");
  cache.abandon(1, "new-image");
  const policy::MemoLookup found = waiting.get();
  EXPECT_FALSE(found.claimed);
  EXPECT_EQ(found.findings, nullptr);
  EXPECT_TRUE(cache.findOrClaim(1, "new-image", true).claimed) << "the key is free again";
}

TEST(RuleResultCache, ANewPolicyRevisionReleasesWhoeverWaitsUnderTheOldOne) {
  RuleResultCache cache(1 << 20);
  ASSERT_TRUE(cache.findOrClaim(1, "image", true).claimed);
  auto waiting = waitingFind(cache, 1, "image");
  EXPECT_TRUE(cache.findOrClaim(2, "image", true).claimed);
  EXPECT_EQ(waiting.get().findings, nullptr);
  cache.store(1, "image", findingsSaying("old policies"));  // the old claimant finishes late
  EXPECT_EQ(cache.find(2, "image"), nullptr);
  cache.store(2, "image", findingsSaying("new policies"));
  EXPECT_EQ(cache.find(2, "image")->front().message, "new policies");
}

}  // namespace
}  // namespace imagegate::cache
