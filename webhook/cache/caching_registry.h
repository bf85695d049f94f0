#pragma once

#include <chrono>
#include <cstddef>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "cache/facts_cache.h"
#include "registry/registry.h"

// A Registry decorator that remembers image facts. A digest-pinned reference names immutable
// content, so its facts are kept until evicted; a tag can be re-pushed, so its facts expire after
// a short TTL. Concurrent requests for the same image share one fetch.
namespace imagegate::cache {

struct CacheOptions {
  std::size_t maxEntries = 4096;             ///< Least recently used entries go first.
  std::chrono::milliseconds tagTtl{60'000};  ///< How long facts fetched by tag stay fresh.
};

class CachingRegistry : public registry::Registry, public FactsCache {
 public:
  using Clock = std::chrono::steady_clock;

  CachingRegistry(registry::RegistryPtr inner, CacheOptions options);

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

 private:
  struct Entry {
    std::shared_future<image::ImageFacts> facts;
    Clock::time_point expires;  ///< time_point::max() for digest-pinned references.
    std::list<std::string>::iterator recency;
  };

  /// The cached or in-flight facts for `key`; when there are none, starts an entry and hands the
  /// caller its promise in `owned`.
  std::shared_future<image::ImageFacts> lookupOrStart(
      const std::string& key, const image::ImageRef& ref,
      std::optional<std::promise<image::ImageFacts>>& owned);
  void forget(const std::string& key);
  void evictOverflow();

  registry::RegistryPtr inner_;
  CacheOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> recency_;  ///< Most recently used first.
};

}  // namespace imagegate::cache
