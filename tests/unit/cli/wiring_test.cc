#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/wiring.h"
#include "common/error.h"
#include "testutil/fake_registry.h"

namespace imagegate::cli {
namespace {

using ::testing::HasSubstr;

/// A registry config file in the test's temporary directory, removed with the object.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& yaml)
      : path_(::testing::TempDir() + "imagegate-wiring-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml") {
    std::ofstream(path_) << yaml;
  }
  ~ConfigFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(MakeFetcherOptions, DefaultsWithoutAConfigFile) {
  const service::FetcherOptions options = makeFetcherOptions("");
  ASSERT_NE(options.registry, nullptr);
  EXPECT_EQ(options.platform.str(), "linux/amd64");
  // The cache is the registry's own, so a cached image never waits in the fetch queue.
  ASSERT_NE(options.cache, nullptr);
  EXPECT_EQ(dynamic_cast<void*>(options.cache.get()), dynamic_cast<void*>(options.registry.get()));
}

TEST(MakeFetcherOptions, PlatformComesFromTheFileUnlessTheFlagSetsIt) {
  const ConfigFile file("platform: linux/arm64/v8\n");
  EXPECT_EQ(makeFetcherOptions(file.path()).platform.str(), "linux/arm64/v8");
  EXPECT_EQ(makeFetcherOptions(file.path(), "linux/s390x").platform.str(), "linux/s390x");
}

TEST(MakeFetcherOptions, ProblemsNameTheirSource) {
  try {
    makeFetcherOptions("/nonexistent/registries.yaml");
    ADD_FAILURE() << "a missing file must be an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/registries.yaml"));
  }
  EXPECT_THROW(makeFetcherOptions("", "not a platform"), Error);
}

TEST(MakeFetcherOptions, CacheSectionBuildsTheDirectoryAndRedisStores) {
  const std::string dir = ::testing::TempDir() + "imagegate-wiring-cache-dir";
  const ConfigFile file("cache:\n  memory: 1Mi\n  layerIndexMemory: 2Mi\n  dir: " + dir +
                        "\n  redis: {address: 127.0.0.1:1, timeout: 50ms}\n");
  CacheParts parts;
  const service::FetcherOptions options = makeFetcherOptions(file.path(), "", &parts);
  ASSERT_NE(parts.facts, nullptr);
  ASSERT_NE(parts.directory, nullptr);
  ASSERT_NE(parts.redis, nullptr);
  EXPECT_EQ(options.registry, parts.facts);
  EXPECT_EQ(options.files.cacheBytes, std::size_t{2} << 20);
  ASSERT_NE(options.files.store, nullptr);
  EXPECT_EQ(parts.facts->stats().entries, 0u);
  // Nothing listens on port 1: the store answers misses, never an error.
  testing::internal::CaptureStderr();
  EXPECT_EQ(options.files.store->load(cache::EntryKind::kLayerIndex, "sha256:x"), std::nullopt);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("redis cache unusable"));
  std::filesystem::remove_all(dir);
}

TEST(MakeFetcherOptions, UnreadableRedisPasswordFileIsAnErrorNamingIt) {
  const ConfigFile file(
      "cache:\n  redis: {address: 127.0.0.1:6379, passwordFile: /nonexistent/redis-password}\n");
  try {
    makeFetcherOptions(file.path());
    ADD_FAILURE() << "a missing password file must be an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/redis-password"));
  }
}

}  // namespace
}  // namespace imagegate::cli

namespace imagegate::cli {
namespace {

TEST(ReloadableRegistry, FetchesAfterAReplacementGoToTheNewRegistry) {
  auto first = std::make_shared<testutil::FakeRegistry>();
  first->add("registry.example/app:1", "root");
  auto second = std::make_shared<testutil::FakeRegistry>();
  second->add("registry.example/app:1", "65532");
  service::FetcherOptions built;
  built.registry = first;
  built.platform = image::Platform::parse("linux/arm64");
  service::FetcherOptions options = built;
  const auto reloadable = makeReloadable(options);
  EXPECT_EQ(options.registry.get(), reloadable.get());
  EXPECT_EQ(dynamic_cast<void*>(options.cache.get()), dynamic_cast<void*>(reloadable.get()));

  const image::ImageRef ref = image::parseImageRef("registry.example/app:1");
  const Deadline deadline = Deadline::after(std::chrono::seconds(10));
  EXPECT_EQ(options.registry->fetchFacts(ref, built.platform, deadline).imageConfig.user, "root");
  EXPECT_FALSE(options.cache->cached(ref, built.platform));  // no cache configured

  built.registry = second;
  built.platform = image::Platform::parse("linux/amd64");
  reloadable->replace(built);
  EXPECT_EQ(options.registry->fetchFacts(ref, built.platform, deadline).imageConfig.user, "65532");
  EXPECT_EQ(first->callsFor("registry.example/app:1"), 1);
  EXPECT_EQ(reloadable->platform().str(), "linux/arm64");  // the fetcher's, fixed at start-up
}

}  // namespace
}  // namespace imagegate::cli
