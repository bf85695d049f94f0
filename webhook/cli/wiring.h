#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "cache/caching_registry.h"
#include "cache/directory_store.h"
#include "cache/facts_cache.h"
#include "cache/redis_store.h"
#include "registry/local_sources.h"
#include "registry/registry.h"
#include "service/facts_fetcher.h"

// The one place that builds the real implementations (registry client, cache) from flags and
// files; serve, review and check all get their image facts through what it builds.
namespace imagegate::cli {

/// The caches makeFetcherOptions() built, for whoever reports their stats(); the stores are null
/// when not configured. Layer-index stats come from FactsFetcher::layerCacheStats().
struct CacheParts {
  std::shared_ptr<cache::CachingRegistry> facts;
  std::shared_ptr<cache::DirectoryStore> directory;
  std::shared_ptr<cache::RedisStore> redis;
};

/// A digest-keyed cache over the Distribution API client, configured from the --registry-config
/// file (empty path: defaults, anonymous access), on `platformFlag` when it is not empty, else
/// the file's platform; with the file's `cache:` settings (memory budgets, tag TTL, cache
/// directory, Redis). Throws imagegate::Error naming the file or flag and the problem.
service::FetcherOptions makeFetcherOptions(const std::string& registryConfigPath,
                                           const std::string& platformFlag = "",
                                           CacheParts* parts = nullptr);

/// The registry and cache of makeFetcherOptions(), replaceable while fetches run: what `serve`
/// swaps in when its --registry-config file (or the Docker config or CA files it names) changes.
/// A fetch keeps the registry it started with; the new one starts with an empty cache, so no
/// facts fetched with the old credentials or CAs outlive them.
class ReloadableRegistry : public registry::Registry, public cache::FactsCache {
 public:
  /// `built` is what makeFetcherOptions() returned.
  explicit ReloadableRegistry(const service::FetcherOptions& built, CacheParts parts = {});
  void replace(const service::FetcherOptions& built, CacheParts parts = {});
  /// The caches of the registry in use, for their stats.
  CacheParts cacheParts() const { return current_.load()->parts; }
  /// The platform of the first options: the fetcher's, which a replacement does not change.
  const image::Platform& platform() const { return platform_; }

  // registry::Registry
  image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform& platform,
                               Deadline deadline) override;
  void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                 const registry::BlobSink& sink, Deadline deadline) override;
  // cache::FactsCache
  std::optional<image::ImageFacts> cached(const image::ImageRef& ref,
                                          const image::Platform& platform) override;

 private:
  struct Current {
    registry::RegistryPtr registry;
    cache::FactsCachePtr cache;
    CacheParts parts;
  };
  const image::Platform platform_;
  std::atomic<std::shared_ptr<const Current>> current_;
};

/// `options` with its registry and cache behind one ReloadableRegistry (returned too).
std::shared_ptr<ReloadableRegistry> makeReloadable(service::FetcherOptions& options,
                                                   CacheParts parts = {});

/// Puts images read from disk (oci:, docker-archive:) in front of `fetcher.registry`: their judged
/// references are answered from their files, every other reference by the registry as before.
void routeLocalImages(service::FetcherOptions& fetcher,
                      std::map<image::ImageRef, registry::LocalImagePtr> images);

}  // namespace imagegate::cli
