#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "testutil/fake_registry.h"
#include "cache/caching_registry.h"

namespace imagegate::cache {
namespace {

using image::ImageRef;
using image::parseImageRef;
using image::Platform;

const std::string kPinned = "ghcr.io/acme/app@sha256:" + std::string(64, 'b');

Deadline soon() { return Deadline::after(std::chrono::seconds(5)); }

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
  CacheOptions options;
  options.maxEntries = 2;
  CachingRegistry cache(fake, options);
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
  CacheOptions options;
  options.maxEntries = 2;
  CachingRegistry cache(fake, options);
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:1"), {}, soon());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:2"), {}, soon());
  EXPECT_TRUE(cache.cached(parseImageRef("ghcr.io/acme/app:1"), {}).has_value());
  cache.fetchFacts(parseImageRef("ghcr.io/acme/app:3"), {}, soon());  // evicts 2, not 1
  EXPECT_TRUE(cache.cached(parseImageRef("ghcr.io/acme/app:1"), {}).has_value());
  EXPECT_FALSE(cache.cached(parseImageRef("ghcr.io/acme/app:2"), {}).has_value());
}

}  // namespace
}  // namespace imagegate::cache
