#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "cache/caching_registry.h"
#include "testutil/fake_registry.h"

namespace imagegate::cache {
namespace {

using image::ImageRef;
using image::parseImageRef;
using image::Platform;

const std::string kPinned = "ghcr.io/acme/app@sha256:" + std::string(64, 'b');

Deadline soon() { return Deadline::after(std::chrono::seconds(5)); }

/// Options whose byte budget holds the facts of two of the app:N images, not three.
CacheOptions budgetForTwo() {
  testutil::FakeRegistry probe;
  probe.add("ghcr.io/acme/app:1", "1");
  const auto facts = probe.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  const std::size_t one = estimateFactsBytes("ghcr.io/acme/app:1|linux/amd64", facts);
  CacheOptions options;
  options.maxBytes = 2 * one + one / 2;
  return options;
}

TEST(CachingRegistry, SecondFetchOfTheSameImageIsServedFromCache) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  CachingRegistry cache(fake, CacheOptions{});
  EXPECT_EQ(cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon()).imageConfig.user,
            "1000");
  EXPECT_EQ(cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon()).imageConfig.user,
            "1000");
  EXPECT_EQ(fake->calls(), 1);
}

TEST(CachingRegistry, PlatformsAreCachedSeparately) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  CachingRegistry cache(fake, CacheOptions{});
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), Platform::parse("linux/amd64"), soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), Platform::parse("linux/arm64"), soon());
  EXPECT_EQ(fake->calls(), 2);
}

TEST(CachingRegistry, TagsExpireDigestsDoNot) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  fake->add(kPinned, "1000");
  CacheOptions options;
  options.tagTtl = std::chrono::milliseconds(0);
  CachingRegistry cache(fake, options);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  EXPECT_EQ(fake->calls(), 2);
  cache.fetchFacts(parseImageRef(kPinned), {}, soon());
  cache.fetchFacts(parseImageRef(kPinned), {}, soon());
  EXPECT_EQ(fake->calls(), 3);
}

TEST(CachingRegistry, FailuresAreNotCached) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  CachingRegistry cache(fake, CacheOptions{});
  const ImageRef missing = parseImageRef("ghcr.io/acme/missing:1");
  EXPECT_THROW(cache.fetchFacts(missing, {}, soon()), registry::FetchError);
  EXPECT_THROW(cache.fetchFacts(missing, {}, soon()), registry::FetchError);
  EXPECT_EQ(fake->calls(), 2);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(CachingRegistry, LeastRecentlyUsedEntriesAreEvicted) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  for (const char* tag : {"1", "2", "3"}) fake->add(std::string("ghcr.io/acme/app:") + tag, "1");
  CachingRegistry cache(fake, budgetForTwo());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:2"), {}, soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());  // 1 is now the newest
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:3"), {}, soon());  // evicts 2
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(fake->calls(), 3);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  EXPECT_EQ(fake->calls(), 3);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:2"), {}, soon());
  EXPECT_EQ(fake->calls(), 4);
}

TEST(CachingRegistry, ConcurrentFetchesOfOneImageShareOneRegistryCall) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  // The registry answers only once two calls are in flight together; a shared fetch makes one
  // call, which times out, and both callers see that single outcome.
  fake->holdUntilConcurrent(2);
  CachingRegistry cache(fake, CacheOptions{});
  const Deadline shortWait = Deadline::after(std::chrono::seconds(1));
  auto fetch = [&] { return cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, shortWait); };
  auto first = std::async(std::launch::async, fetch);
  auto second = std::async(std::launch::async, fetch);
  EXPECT_THROW(first.get(), registry::FetchError);
  EXPECT_THROW(second.get(), registry::FetchError);
  EXPECT_EQ(fake->calls(), 1);
}

TEST(CachingRegistry, CachedAnswersFromMemoryOnlyAndNeverAsksTheRegistry) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add(kPinned, "1000");
  CachingRegistry cache(fake, CacheOptions{});
  const ImageRef pinned = parseImageRef(kPinned);
  EXPECT_FALSE(cache.cached(pinned, {}).has_value());
  EXPECT_EQ(fake->calls(), 0);
  cache.fetchFacts(pinned, {}, soon());
  const auto hit = cache.cached(pinned, {});
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->imageConfig.user, "1000");
  EXPECT_FALSE(cache.cached(pinned, Platform::parse("linux/arm64")).has_value());
  EXPECT_EQ(fake->calls(), 1);
}

TEST(CachingRegistry, CachedKnowsNothingOfFailuresOrExpiredTags) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add("ghcr.io/acme/app:1", "1000");
  CacheOptions options;
  options.tagTtl = std::chrono::milliseconds(0);
  CachingRegistry cache(fake, options);
  const ImageRef missing = parseImageRef("ghcr.io/acme/missing:1");
  EXPECT_THROW(cache.fetchFacts(missing, {}, soon()), registry::FetchError);
  EXPECT_FALSE(cache.cached(missing, {}).has_value());
  const ImageRef tagged = parseImageRef("ghcr.io/acme/app:1");
  cache.fetchFacts(tagged, {}, soon());
  EXPECT_FALSE(cache.cached(tagged, {}).has_value());
  EXPECT_EQ(fake->calls(), 2);
}

TEST(CachingRegistry, CachedDoesNotWaitForAFetchInFlight) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add(kPinned, "1000");
  fake->holdUntilReleased("ghcr.io");
  testutil::ReleaseOnExit release(*fake);
  CachingRegistry cache(fake, CacheOptions{});
  const ImageRef pinned = parseImageRef(kPinned);
  auto fetching =
      std::async(std::launch::async, [&] { return cache.fetchFacts(pinned, {}, soon()); });
  ASSERT_TRUE(fake->waitUntilInFlight(1));
  EXPECT_FALSE(cache.cached(pinned, {}).has_value());
  fake->releaseHeldFetches();
  EXPECT_EQ(fetching.get().imageConfig.user, "1000");
  EXPECT_TRUE(cache.cached(pinned, {}).has_value());
}

TEST(CachingRegistry, CachedCountsAsAUseForEviction) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  for (const char* tag : {"1", "2", "3"}) fake->add(std::string("ghcr.io/acme/app:") + tag, "1");
  CachingRegistry cache(fake, budgetForTwo());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:2"), {}, soon());
  EXPECT_TRUE(cache.cached(parseImageRef("ghcr.io/acme/app:1"), {}).has_value());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:3"), {}, soon());  // evicts 2, not 1
  EXPECT_TRUE(cache.cached(parseImageRef("ghcr.io/acme/app:1"), {}).has_value());
  EXPECT_FALSE(cache.cached(parseImageRef("ghcr.io/acme/app:2"), {}).has_value());
}

TEST(CachingRegistry, StatsCountHitsMissesBytesAndEvictions) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  for (const char* tag : {"1", "2", "3"}) fake->add(std::string("ghcr.io/acme/app:") + tag, "1");
  const CacheOptions options = budgetForTwo();
  CachingRegistry cache(fake, options);
  EXPECT_EQ(cache.stats().bytes, 0u);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());  // miss
  const std::size_t one = cache.stats().bytes;
  EXPECT_GT(one, 0u);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());   // hit
  EXPECT_TRUE(cache.cached(parseImageRef("ghcr.io/acme/app:1"), {}));  // hit
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:2"), {}, soon());   // miss
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:3"), {}, soon());   // miss, evicts 1
  const CacheStats stats = cache.stats();
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_EQ(stats.bytes, 2 * one);
  EXPECT_LE(stats.bytes, options.maxBytes);
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 3u);
  EXPECT_EQ(stats.evictions, 1u);
}

TEST(CachingRegistry, EstimateGrowsWithWhatTheFactsHold) {
  image::ImageFacts small;
  image::ImageFacts large = small;
  for (int i = 0; i < 100; ++i) {
    large.layers.push_back(
        {"application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + std::string(64, 'a'), 1});
    large.imageConfig.env.push_back("VARIABLE_" + std::to_string(i) + "=" + std::string(40, 'x'));
  }
  const std::size_t smallBytes = estimateFactsBytes("k", small);
  // Each layer's digest and media type alone are over 100 characters; each env line 50.
  EXPECT_GT(estimateFactsBytes("k", large), smallBytes + 100 * 150);
}

TEST(CachingRegistry, AFetchInFlightIsNeverEvictedSoItsWaitersShareIt) {
  auto fake = std::make_shared<testutil::FakeRegistry>();
  fake->add(kPinned, "1000");
  fake->add("ghcr.io/acme/app:1", "1");
  fake->holdUntilReleased("ghcr.io");
  testutil::ReleaseOnExit release(*fake);
  CacheOptions options;
  options.maxBytes = 1;  // nothing completed fits
  CachingRegistry cache(fake, options);
  const ImageRef pinned = parseImageRef(kPinned);
  auto first = std::async(std::launch::async, [&] { return cache.fetchFacts(pinned, {}, soon()); });
  ASSERT_TRUE(fake->waitUntilInFlight(1));
  auto second =
      std::async(std::launch::async, [&] { return cache.fetchFacts(pinned, {}, soon()); });
  // Joining the fetch in flight counts as a hit.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cache.stats().hits == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  fake->releaseHeldFetches();
  EXPECT_EQ(first.get().imageConfig.user, "1000");
  EXPECT_EQ(second.get().imageConfig.user, "1000");
  EXPECT_EQ(fake->callsFor(kPinned), 1);
  EXPECT_EQ(cache.stats().entries, 0u);  // over the budget once complete: not kept
  EXPECT_EQ(cache.stats().bytes, 0u);
}

}  // namespace
}  // namespace imagegate::cache
