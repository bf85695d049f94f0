#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_stats.h"
#include "cache/codec.h"

// A second level behind the in-memory caches: a directory that outlives the process, Redis that
// replicas share. Header-only, so the service module can read and fill layer indexes through it
// without linking the cache module. Implementations verify what they read (cache/codec.h) and
// never throw: a store that fails is a miss, with a warning in the log.
namespace imagegate::cache {

class EntryStore {
 public:
  virtual ~EntryStore() = default;

  /// The payload stored for (kind, key), verified; nullopt when absent or untrustworthy.
  virtual std::optional<std::string> load(EntryKind kind, const std::string& key) = 0;
  /// Stores `payload` for (kind, key); best effort.
  virtual void save(EntryKind kind, const std::string& key, std::string_view payload) = 0;
  /// Hits and misses of load(), entries and bytes held where the store knows them.
  virtual CacheStats stats() const = 0;
};

using EntryStorePtr = std::shared_ptr<EntryStore>;

}  // namespace imagegate::cache
