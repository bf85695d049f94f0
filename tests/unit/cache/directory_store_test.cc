#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cache/directory_store.h"
#include "common/error.h"
#include "common/log.h"

namespace imagegate::cache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kLayer = "sha256:" + std::string(64, 'a');

/// A fresh directory per test, removed afterwards.
class DirectoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("imagegate-dirstore-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  DirectoryStoreOptions options(std::size_t maxBytes = std::size_t{1} << 20) const {
    return {dir_, maxBytes};
  }
  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static void write(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  /// Loads (kind, key) from a new store over the same directory, capturing the log.
  std::pair<std::optional<std::string>, std::string> loadFresh(EntryKind kind,
                                                               const std::string& key) {
    ::testing::internal::CaptureStderr();
    DirectoryStore store(options());
    auto loaded = store.load(kind, key);
    return {loaded, ::testing::internal::GetCapturedStderr()};
  }

  fs::path dir_;
};

TEST_F(DirectoryStoreTest, EntriesSurviveANewStoreOverTheSameDirectory) {
  {
    DirectoryStore store(options());
    store.save(EntryKind::kLayerIndex, kLayer, "index bytes");
    EXPECT_EQ(store.stats().entries, 1u);
  }
  DirectoryStore again(options());
  EXPECT_EQ(again.stats().entries, 1u);
  EXPECT_EQ(again.load(EntryKind::kLayerIndex, kLayer), "index bytes");
  EXPECT_EQ(again.load(EntryKind::kImageFacts, kLayer), std::nullopt);  // another kind
  EXPECT_EQ(again.stats().hits, 1u);
  EXPECT_EQ(again.stats().misses, 1u);
  // Written through a temporary file and renamed: nothing else is left in the directory.
  std::size_t files = 0;
  for (const auto& item : fs::recursive_directory_iterator(dir_)) files += item.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(DirectoryStoreTest, TruncatedFileIsIgnoredWithAWarningAndRemoved) {
  fs::path path;
  {
    DirectoryStore store(options());
    store.save(EntryKind::kLayerIndex, kLayer, std::string(1000, 'x'));
    path = store.pathOf(EntryKind::kLayerIndex, kLayer);
  }
  const std::string whole = read(path);
  write(path, whole.substr(0, whole.size() - 10));
  const auto [loaded, log] = loadFresh(EntryKind::kLayerIndex, kLayer);
  EXPECT_EQ(loaded, std::nullopt);
  EXPECT_THAT(log, HasSubstr("\"level\":\"warn\""));
  EXPECT_THAT(log, HasSubstr("truncated"));
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(DirectoryStoreTest, CorruptPayloadIsIgnoredWithAWarning) {
  fs::path path;
  {
    DirectoryStore store(options());
    store.save(EntryKind::kLayerIndex, kLayer, std::string(1000, 'x'));
    path = store.pathOf(EntryKind::kLayerIndex, kLayer);
  }
  std::string bytes = read(path);
  bytes[bytes.size() - 500] = 'y';  // same length, one byte changed
  write(path, bytes);
  const auto [loaded, log] = loadFresh(EntryKind::kLayerIndex, kLayer);
  EXPECT_EQ(loaded, std::nullopt);
  EXPECT_THAT(log, HasSubstr("does not match its sha256"));
}

TEST_F(DirectoryStoreTest, ForeignFileIsIgnoredWithAWarning) {
  fs::path path;
  {
    DirectoryStore store(options());
    path = store.pathOf(EntryKind::kLayerIndex, kLayer);
  }
  write(path, "#!/bin/sh\necho not a cache entry\n");
  const auto [loaded, log] = loadFresh(EntryKind::kLayerIndex, kLayer);
  EXPECT_EQ(loaded, std::nullopt);
  EXPECT_THAT(log, HasSubstr("not an imagegate cache entry"));
}

TEST_F(DirectoryStoreTest, EntryOfAnotherKeyUnderThisNameIsIgnored) {
  // A file copied or renamed under another entry's name: valid, but not what the name says.
  const std::string other = "sha256:" + std::string(64, 'b');
  fs::path ours;
  {
    DirectoryStore store(options());
    store.save(EntryKind::kLayerIndex, other, "the other layer's index");
    ours = store.pathOf(EntryKind::kLayerIndex, kLayer);
    fs::rename(store.pathOf(EntryKind::kLayerIndex, other), ours);
  }
  const auto [loaded, log] = loadFresh(EntryKind::kLayerIndex, kLayer);
  EXPECT_EQ(loaded, std::nullopt);
  EXPECT_THAT(log, HasSubstr("another key"));
}

TEST_F(DirectoryStoreTest, ByteBudgetEvictsLeastRecentlyUsedFiles) {
  const std::string payload(1000, 'p');
  DirectoryStore store(options(2500));  // two envelopes of ~1.1 KB fit, three do not
  const std::string a = "sha256:" + std::string(64, '1');
  const std::string b = "sha256:" + std::string(64, '2');
  const std::string c = "sha256:" + std::string(64, '3');
  store.save(EntryKind::kLayerIndex, a, payload);
  store.save(EntryKind::kLayerIndex, b, payload);
  EXPECT_TRUE(store.load(EntryKind::kLayerIndex, a));  // a is now the most recently used
  store.save(EntryKind::kLayerIndex, c, payload);      // evicts b
  EXPECT_EQ(store.stats().entries, 2u);
  EXPECT_LE(store.stats().bytes, 2500u);
  EXPECT_EQ(store.stats().evictions, 1u);
  EXPECT_FALSE(fs::exists(store.pathOf(EntryKind::kLayerIndex, b)));
  EXPECT_TRUE(store.load(EntryKind::kLayerIndex, a));
  EXPECT_TRUE(store.load(EntryKind::kLayerIndex, c));
}

TEST_F(DirectoryStoreTest, LeftoverTemporaryFilesAreRemovedAtStart) {
  {
    DirectoryStore store(options());
    write(store.pathOf(EntryKind::kLayerIndex, kLayer).string() + ".123.1.tmp", "half written");
  }
  DirectoryStore again(options());
  EXPECT_EQ(again.stats().entries, 0u);
  std::size_t files = 0;
  for (const auto& item : fs::recursive_directory_iterator(dir_)) files += item.is_regular_file();
  EXPECT_EQ(files, 0u);
}

TEST_F(DirectoryStoreTest, UnusableDirectoryIsAnErrorNamingIt) {
  fs::create_directories(dir_);
  write(dir_ / "file", "a file, not a directory");
  try {
    DirectoryStore store({dir_ / "file" / "cache", 1 << 20});
    ADD_FAILURE() << "a directory under a file cannot be created";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir_ / "file" / "cache").string()));
  }
}

}  // namespace
}  // namespace imagegate::cache
