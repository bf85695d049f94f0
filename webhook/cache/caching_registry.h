#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "cache/cache_stats.h"
#include "cache/entry_store.h"
#include "cache/facts_cache.h"
#include "registry/registry.h"

// A Registry decorator that remembers image facts. A digest-pinned reference names immutable
// content, so its facts are kept until evicted; a tag can be re-pushed, so its facts expire after
// a short TTL. Concurrent requests for the same image share one fetch.
namespace imagegate::cache {

struct CacheOptions {
  /// Memory for facts (estimated per entry: strings, layer list, config); least recently used
  /// entries go first. 32 MiB holds facts of about ten thousand typical images.
  std::size_t maxBytes = std::size_t{32} << 20;
  std::chrono::milliseconds tagTtl{60'000};  ///< How long facts fetched by tag stay fresh.
};

/// The estimated memory one cached entry of `facts` under `key` costs.
std::size_t estimateFactsBytes(const std::string& key, const image::ImageFacts& facts);

class CachingRegistry : public registry::Registry, public FactsCache {
 public:
  using Clock = std::chrono::steady_clock;

  /// `store`, when set, is asked before the registry for digest-pinned references (whose facts
  /// never change) and receives what the registry answers for them.
  CachingRegistry(registry::RegistryPtr inner, CacheOptions options, EntryStorePtr store = nullptr);

  // registry::Registry
  image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform& platform,
                               Deadline deadline) override;
  /// Not cached here: a blob is streamed to its consumer, which keeps what it derives from it.
  void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                 const registry::BlobSink& sink, Deadline deadline) override {
    inner_->fetchBlob(ref, blob, sink, deadline);
  }

  // FactsCache
  std::optional<image::ImageFacts> cached(const image::ImageRef& ref,
                                          const image::Platform& platform) override;

  std::size_t size() const;
  CacheStats stats() const;

 private:
  struct Entry {
    std::shared_future<image::ImageFacts> facts;
    Clock::time_point expires;  ///< time_point::max() for digest-pinned references.
    std::list<std::string>::iterator recency;
    /// Set once the fetch has succeeded; an entry still in flight is never evicted, since the
    /// reviews waiting on it would otherwise be joined by a second fetch.
    std::size_t bytes = 0;
    bool ready = false;
    std::uint64_t fetchId = 0;  ///< Which fetch made it: a later one may replace it meanwhile.
  };

  /// The cached or in-flight facts for `key`; when there are none, starts an entry and hands the
  /// caller its promise in `owned` and the entry's `fetchId`.
  std::shared_future<image::ImageFacts> lookupOrStart(
      const std::string& key, std::optional<std::promise<image::ImageFacts>>& owned,
      std::uint64_t& fetchId);
  void forget(const std::string& key, std::uint64_t fetchId);
  /// Marks the entry of a completed fetch ready, records its size and evicts to the budget.
  void settle(const std::string& key, std::uint64_t fetchId, const image::ImageRef& ref,
              const image::ImageFacts& facts);
  void evictOverBudget();                                    // expects mutex_ held
  void erase(std::map<std::string, Entry>::iterator entry);  // expects mutex_ held

  /// The facts from the store when it has them for a pinned reference, else from the registry
  /// (then given to the store).
  image::ImageFacts fetchThroughStore(const std::string& key, const image::ImageRef& ref,
                                      const image::Platform& platform, Deadline deadline);

  registry::RegistryPtr inner_;
  CacheOptions options_;
  EntryStorePtr store_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> recency_;  ///< Most recently used first.
  std::size_t bytes_ = 0;
  std::uint64_t lastFetchId_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace imagegate::cache
