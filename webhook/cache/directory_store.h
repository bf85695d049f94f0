#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "cache/entry_store.h"

// Cache entries in files, so a restarted replica starts warm (the chart mounts an emptyDir or a
// volume at cache.dir). Each entry is one file, <dir>/<kind>/<sha256 of key>, holding the codec's
// envelope; written to a temporary file and renamed into place, so a reader never sees half an
// entry. A file that is truncated, corrupt or not what its name says is ignored with a warning
// and removed, never trusted.
namespace imagegate::cache {

struct DirectoryStoreOptions {
  std::filesystem::path dir;
  /// Files beyond this are removed, least recently used first.
  std::size_t maxBytes = std::size_t{512} << 20;
};

class DirectoryStore : public EntryStore {
 public:
  /// Creates the directory if needed and takes stock of what is there (removing leftover
  /// temporary files). Throws Error naming the directory when it cannot be used.
  explicit DirectoryStore(DirectoryStoreOptions options);

  // EntryStore
  std::optional<std::string> load(EntryKind kind, const std::string& key) override;
  void save(EntryKind kind, const std::string& key, std::string_view payload) override;
  CacheStats stats() const override;

  /// Where (kind, key) is stored; for tests that damage files.
  std::filesystem::path pathOf(EntryKind kind, const std::string& key) const;

 private:
  struct File {
    std::size_t bytes = 0;
    std::uint64_t lastUse = 0;
  };
  void track(const std::filesystem::path& path, std::size_t bytes);  // expects mutex_ held
  void untrack(const std::filesystem::path& path);                   // expects mutex_ held
  void evictOverBudget();                                            // expects mutex_ held
  void discard(const std::filesystem::path& path, const std::string& reason);

  const DirectoryStoreOptions options_;
  mutable std::mutex mutex_;
  std::map<std::filesystem::path, File> files_;
  std::size_t bytes_ = 0;
  std::uint64_t useCounter_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace imagegate::cache
