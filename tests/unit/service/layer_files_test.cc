#include "service/layer_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../../testutil/fake_registry.h"
#include "../../testutil/layer_builder.h"
#include "cache/caching_registry.h"
#include "registry/digest.h"
#include "service/facts_fetcher.h"

namespace imagegate::service {
namespace {

using ::testing::HasSubstr;
using testutil::FakeRegistry;
using testutil::TarBuilder;

constexpr const char* kGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Serves `tar` gzipped as a layer blob and returns its descriptor.
image::Descriptor serveLayer(FakeRegistry& registry, const std::string& tar) {
  std::string bytes = testutil::gzipCompress(tar);
  image::Descriptor layer{kGzip, registry::sha256Digest(bytes), bytes.size()};
  registry.addBlob(layer.digest, std::move(bytes), 512);
  return layer;
}

image::ImageFacts factsWith(std::vector<image::Descriptor> layers, const std::string& manifest) {
  image::ImageFacts facts;
  facts.manifestDigest = "sha256:" + std::string(64, manifest.at(0));
  facts.layers = std::move(layers);
  return facts;
}

policy::ReviewPlan filesPlan(const std::vector<std::string>& images) {
  policy::ReviewPlan plan;
  for (const std::string& image : images) {
    policy::FactNeeds& needs = plan.images[image::parseImageRef(image)];
    needs.config = true;
    needs.files = true;
  }
  return plan;
}

struct Fixture {
  std::shared_ptr<FakeRegistry> fake = std::make_shared<FakeRegistry>();
  image::Descriptor base = serveLayer(*fake, TarBuilder()
                                                 .dir("bin")
                                                 .file("bin/busybox", "elf", 0755)
                                                 .symlink("bin/sh", "busybox")
                                                 .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
                                                 .tar());
  image::Descriptor app =
      serveLayer(*fake, TarBuilder().whiteout("bin", "sh").file("app/server", "elf", 0755).tar());
};

FetcherOptions optionsFor(registry::RegistryPtr registry, cache::FactsCachePtr cache = nullptr) {
  FetcherOptions options;
  options.registry = std::move(registry);
  options.cache = std::move(cache);
  return options;
}

/// One review's worth of fetching: lookUpKnown, then fetch.
policy::ImageFactsMap review(const FactsFetcher& fetcher, const std::vector<std::string>& images) {
  const policy::ReviewPlan plan = filesPlan(images);
  policy::ImageFactsMap facts;
  const auto toFetch = fetcher.lookUpKnown(plan, facts);
  fetcher.fetch(plan, toFetch, Deadline::after(std::chrono::seconds(10)), facts);
  return facts;
}

TEST(LayerFilesTest, FindsFilesAndAppliesWhiteoutsAcrossLayers) {
  Fixture f;
  f.fake->addFacts("example.test/app:1", factsWith({f.base, f.app}, "b"));
  FactsFetcher fetcher(optionsFor(f.fake));
  auto facts = review(fetcher, {"example.test/app:1"});
  const policy::ImageLookup& lookup = facts.at(image::parseImageRef("example.test/app:1"));
  ASSERT_TRUE(lookup.facts) << lookup.error;
  ASSERT_TRUE(lookup.files) << lookup.filesError;
  EXPECT_EQ(lookup.files->layerCount(), 2u);
  EXPECT_TRUE(lookup.files->find("app/server"));
  EXPECT_TRUE(lookup.files->find("bin/busybox"));
  EXPECT_FALSE(lookup.files->find("bin/sh")) << "the second layer's whiteout deletes it";
  ASSERT_TRUE(lookup.files->find("app/server"));
  EXPECT_EQ(lookup.files->find("app/server")->layer, 1u);
}

TEST(LayerFilesTest, NoFilesFetchedWhenNoRuleNeedsThem) {
  Fixture f;
  f.fake->addFacts("example.test/app:1", factsWith({f.base, f.app}, "b"));
  FactsFetcher fetcher(optionsFor(f.fake));
  policy::ReviewPlan plan;
  plan.images[image::parseImageRef("example.test/app:1")].config = true;
  policy::ImageFactsMap facts;
  fetcher.fetch(plan, fetcher.lookUpKnown(plan, facts), Deadline::after(std::chrono::seconds(10)),
                facts);
  EXPECT_FALSE(facts.begin()->second.files);
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 0);
}

TEST(LayerFilesTest, NamedUserFetchesFilesOnlyWhenTheUserIsAName) {
  Fixture f;
  image::ImageFacts named = factsWith({f.base}, "b");
  named.imageConfig.user = "app:app";
  image::ImageFacts numeric = factsWith({f.app}, "c");
  numeric.imageConfig.user = "1000";
  f.fake->addFacts("example.test/named:1", named);
  f.fake->addFacts("example.test/numeric:1", numeric);
  FactsFetcher fetcher(optionsFor(f.fake));
  policy::ReviewPlan plan;
  for (const char* image : {"example.test/named:1", "example.test/numeric:1"}) {
    policy::FactNeeds& needs = plan.images[image::parseImageRef(image)];
    needs.config = true;
    needs.filesIfNamedUser = true;
  }
  policy::ImageFactsMap facts;
  fetcher.fetch(plan, fetcher.lookUpKnown(plan, facts), Deadline::after(std::chrono::seconds(10)),
                facts);
  const auto& namedLookup = facts.at(image::parseImageRef("example.test/named:1"));
  ASSERT_TRUE(namedLookup.files) << namedLookup.filesError;
  EXPECT_TRUE(namedLookup.files->passwd());
  EXPECT_FALSE(facts.at(image::parseImageRef("example.test/numeric:1")).files);
  EXPECT_EQ(f.fake->callsForBlob(f.app.digest), 0);
}

TEST(LayerFilesTest, SecondReviewFetchesNoBlobAndSharedBaseLayersAreScannedOnce) {
  Fixture f;
  f.fake->addFacts("example.test/app:1", factsWith({f.base, f.app}, "b"));
  f.fake->addFacts("example.test/other:1", factsWith({f.base}, "c"));
  auto caching = std::make_shared<cache::CachingRegistry>(f.fake, cache::CacheOptions{});
  FactsFetcher fetcher(optionsFor(caching, caching));

  auto first = review(fetcher, {"example.test/app:1"});
  ASSERT_TRUE(first.begin()->second.files) << first.begin()->second.filesError;
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
  EXPECT_EQ(f.fake->callsForBlob(f.app.digest), 1);

  auto second = review(fetcher, {"example.test/app:1"});
  ASSERT_TRUE(second.begin()->second.files) << second.begin()->second.filesError;
  EXPECT_EQ(second.begin()->second.files, first.begin()->second.files) << "the merged cache's";
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
  EXPECT_EQ(f.fake->callsForBlob(f.app.digest), 1);

  auto other = review(fetcher, {"example.test/other:1"});
  ASSERT_TRUE(other.begin()->second.files) << other.begin()->second.filesError;
  EXPECT_TRUE(other.begin()->second.files->find("bin/sh"));
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1) << "the base layer's index is cached";
}

TEST(LayerFilesTest, ConcurrentReviewsShareOneScan) {
  Fixture f;
  for (int i = 0; i < 4; ++i) {
    f.fake->addFacts("example.test/app:" + std::to_string(i),
                     factsWith({f.base, f.app}, std::string(1, static_cast<char>('b' + i))));
  }
  FactsFetcher fetcher(optionsFor(f.fake));
  std::vector<std::thread> reviews;
  std::vector<policy::ImageFactsMap> results(4);
  for (int i = 0; i < 4; ++i) {
    reviews.emplace_back(
        [&, i] { results[i] = review(fetcher, {"example.test/app:" + std::to_string(i)}); });
  }
  for (std::thread& t : reviews) t.join();
  for (const auto& facts : results) {
    ASSERT_TRUE(facts.begin()->second.files) << facts.begin()->second.filesError;
  }
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
  EXPECT_EQ(f.fake->callsForBlob(f.app.digest), 1);
}

TEST(LayerFilesTest, ReviewsWaitingForTheSameLayersMergeThemOnce) {
  // A Deployment's replicas all wait for the same scans and wake up together when they end;
  // each building the merged filesystem of a large image again cost a cold burst ~0.5 s.
  Fixture f;
  image::ImageFacts facts = factsWith({f.base, f.app}, "b");
  facts.ref = image::parseImageRef("example.test/app:1");
  LayerFiles files(f.fake, LayerFilesOptions{});
  const Deadline deadline = Deadline::after(std::chrono::seconds(10));
  constexpr int kReviews = 8;
  std::vector<LayerFiles::Pending> pending;
  for (int i = 0; i < kReviews; ++i) pending.push_back(files.start(facts, deadline));
  std::vector<policy::ImageLookup> lookups(kReviews);
  std::vector<std::thread> reviews;
  for (int i = 0; i < kReviews; ++i) {
    reviews.emplace_back([&, i] { files.finish(pending[i], deadline, lookups[i]); });
  }
  for (std::thread& review : reviews) review.join();
  for (const policy::ImageLookup& lookup : lookups) {
    ASSERT_TRUE(lookup.files) << lookup.filesError;
    EXPECT_EQ(lookup.files, lookups.front().files) << "one merged filesystem, shared";
  }
  EXPECT_EQ(files.cached(facts.manifestDigest), lookups.front().files);
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
}

/// An EntryStore in memory, as the cache directory or Redis would behave (without the envelope,
/// which the cache module's own tests cover).
class MemoryStore : public cache::EntryStore {
 public:
  std::optional<std::string> load(cache::EntryKind kind, const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = entries_.find({kind, key});
    if (found == entries_.end()) return std::nullopt;
    return found->second;
  }
  void save(cache::EntryKind kind, const std::string& key, std::string_view payload) override {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_[{kind, key}] = std::string(payload);
  }
  cache::CacheStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return {entries_.size(), 0, 0, 0, 0};
  }
  mutable std::mutex mutex_;
  std::map<std::pair<cache::EntryKind, std::string>, std::string> entries_;
};

TEST(LayerFilesTest, LayerIndexesGoToTheStoreAndComeBackWithoutAFetch) {
  Fixture f;
  f.fake->addFacts("example.test/app:1", factsWith({f.base, f.app}, "b"));
  auto store = std::make_shared<MemoryStore>();
  FetcherOptions options = optionsFor(f.fake);
  options.files.store = store;
  {
    FactsFetcher first(options);
    ASSERT_TRUE(review(first, {"example.test/app:1"}).begin()->second.files);
  }
  EXPECT_EQ(store->entries_.size(), 2u);
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
  // A new fetcher (another replica, or this one restarted) reads the indexes from the store.
  FactsFetcher second(options);
  const auto facts = review(second, {"example.test/app:1"});
  ASSERT_TRUE(facts.begin()->second.files) << facts.begin()->second.filesError;
  EXPECT_TRUE(facts.begin()->second.files->find("app/server"));
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
  EXPECT_EQ(f.fake->callsForBlob(f.app.digest), 1);
}

TEST(LayerFilesTest, UnreadableStoredIndexIsIgnoredWithAWarningAndTheLayerScanned) {
  Fixture f;
  f.fake->addFacts("example.test/app:1", factsWith({f.base}, "b"));
  auto store = std::make_shared<MemoryStore>();
  store->save(cache::EntryKind::kLayerIndex, f.base.digest, "not a layer index");
  FetcherOptions options = optionsFor(f.fake);
  options.files.store = store;
  FactsFetcher fetcher(options);
  ::testing::internal::CaptureStderr();
  const auto facts = review(fetcher, {"example.test/app:1"});
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("cannot be read"));
  ASSERT_TRUE(facts.begin()->second.files) << facts.begin()->second.filesError;
  EXPECT_TRUE(facts.begin()->second.files->find("bin/busybox"));
  EXPECT_EQ(f.fake->callsForBlob(f.base.digest), 1);
}

TEST(LayerFilesTest, CacheHasOneFlightPerDigest) {
  LayerIndexCache cache(1 << 20);
  const auto first = cache.lookupOrClaim("sha256:x");
  const auto second = cache.lookupOrClaim("sha256:x");
  EXPECT_TRUE(first.mustScan);
  EXPECT_FALSE(second.mustScan);
  EXPECT_EQ(cache.scansInFlight(), 1u);
  cache.complete("sha256:x", std::make_shared<const image::LayerIndex>());
  ASSERT_EQ(second.result.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_FALSE(cache.lookupOrClaim("sha256:x").mustScan);
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(LayerFilesTest, CacheStatsCountHitsMissesAndLeastRecentlyUsedEvictions) {
  auto indexOf = [](const std::string& path) {
    image::LayerIndexBuilder builder;
    builder.add(path, image::EntryType::kRegular, 0644, 0, 0, 3);
    return std::make_shared<const image::LayerIndex>(std::move(builder).build());
  };
  const std::size_t one = indexOf("a/file")->memoryBytes();
  LayerIndexCache cache(2 * one + one / 2);  // room for two
  for (const std::string digest : {"sha256:1", "sha256:2"}) {
    ASSERT_TRUE(cache.lookupOrClaim(digest).mustScan);  // misses
    cache.complete(digest, indexOf("a/file"));
  }
  EXPECT_FALSE(cache.lookupOrClaim("sha256:1").mustScan);  // hit; 1 is now the newest
  ASSERT_TRUE(cache.lookupOrClaim("sha256:3").mustScan);   // miss
  cache.complete("sha256:3", indexOf("a/file"));           // evicts 2
  const cache::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_EQ(stats.bytes, 2 * one);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 3u);
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_FALSE(cache.lookupOrClaim("sha256:1").mustScan);
  EXPECT_TRUE(cache.lookupOrClaim("sha256:2").mustScan);
}

TEST(LayerFilesTest, CacheFailuresAreNotRememberedAndTheBudgetHolds) {
  LayerIndexCache cache(1);  // smaller than any index: nothing is kept
  const auto claim = cache.lookupOrClaim("sha256:x");
  cache.fail("sha256:x", std::make_exception_ptr(Error("broken")));
  EXPECT_THROW(claim.result.get(), Error);
  EXPECT_TRUE(cache.lookupOrClaim("sha256:x").mustScan) << "a failure is tried again";
  image::LayerIndexBuilder builder;
  builder.add("bin/sh", image::EntryType::kRegular, 0755, 0, 0, 3);
  cache.complete("sha256:x", std::make_shared<const image::LayerIndex>(std::move(builder).build()));
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(LayerFilesTest, CorruptLayerGivesAnErrorNotFiles) {
  Fixture f;
  image::Descriptor corrupt{kGzip, registry::sha256Digest("not gzip at all"), 15};
  f.fake->addBlob(corrupt.digest, "not gzip at all");
  f.fake->addFacts("example.test/app:1", factsWith({f.base, corrupt}, "b"));
  FactsFetcher fetcher(optionsFor(f.fake));
  auto facts = review(fetcher, {"example.test/app:1"});
  const policy::ImageLookup& lookup = facts.begin()->second;
  ASSERT_TRUE(lookup.facts);
  EXPECT_FALSE(lookup.files);
  EXPECT_THAT(lookup.filesError, HasSubstr("layer 2/2"));
  EXPECT_THAT(lookup.filesError, HasSubstr("example.test/app:1"));
}

TEST(LayerFilesTest, DigestMismatchGivesAnErrorNotFiles) {
  Fixture f;
  image::Descriptor wrong = f.app;
  wrong.digest = "sha256:" + std::string(64, '0');
  f.fake->addBlob(wrong.digest, testutil::gzipCompress(TarBuilder().file("a", "b").tar()));
  wrong.size = testutil::gzipCompress(TarBuilder().file("a", "b").tar()).size();
  f.fake->addFacts("example.test/app:1", factsWith({f.base, wrong}, "b"));
  FactsFetcher fetcher(optionsFor(f.fake));
  auto facts = review(fetcher, {"example.test/app:1"});
  const policy::ImageLookup& lookup = facts.begin()->second;
  EXPECT_FALSE(lookup.files);
  EXPECT_THAT(lookup.filesError, HasSubstr("layer 2/2 (sha256:000000000000)"));
  // Not cached as good: asked again, the layer is fetched again.
  review(fetcher, {"example.test/app:1"});
  EXPECT_EQ(f.fake->callsForBlob(wrong.digest), 2);
}

TEST(LayerFilesTest, ForeignLayersAreSkippedAndReported) {
  Fixture f;
  image::Descriptor foreign{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                            "sha256:" + std::string(64, 'f'), 1000};
  f.fake->addFacts("example.test/app:1", factsWith({foreign, f.base}, "b"));
  FactsFetcher fetcher(optionsFor(f.fake));
  auto facts = review(fetcher, {"example.test/app:1"});
  const policy::ImageLookup& lookup = facts.begin()->second;
  ASSERT_TRUE(lookup.files) << lookup.filesError;
  EXPECT_EQ(lookup.files->layerCount(), 2u);
  EXPECT_EQ(lookup.files->find("bin/busybox")->layer, 1u);
  EXPECT_THAT(lookup.filesNote, HasSubstr("layer 1/2"));
  EXPECT_THAT(lookup.filesNote, HasSubstr("foreign"));
  EXPECT_EQ(f.fake->callsForBlob(foreign.digest), 0);
}

}  // namespace
}  // namespace imagegate::service
