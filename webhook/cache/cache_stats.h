#pragma once

#include <cstddef>
#include <cstdint>

// What a cache reports about itself: plain counters the metrics endpoint reads. Header-only, so
// the service module can report with it without linking the cache module.
namespace imagegate::cache {

struct CacheStats {
  std::size_t entries = 0;  ///< Entries held (fetches in flight not counted).
  std::size_t bytes = 0;    ///< Estimated memory of those entries.
  std::uint64_t hits = 0;   ///< Lookups answered from memory.
  /// Lookups that had to go further (second-level store, registry); a review joining a fetch
  /// already in flight counts as a hit, since it causes no request of its own.
  std::uint64_t misses = 0;
  std::uint64_t evictions = 0;  ///< Entries dropped to stay within the byte budget.
};

}  // namespace imagegate::cache
