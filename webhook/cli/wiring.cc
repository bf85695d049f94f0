#include "cli/wiring.h"

#include <memory>

#include "cache/tiered_store.h"
#include "common/bounded_file.h"
#include "common/error.h"
#include "common/log.h"
#include "registry/distribution_registry.h"
#include "registry/registry_config.h"

namespace imagegate::cli {
namespace {

constexpr std::size_t kMaxPasswordFileBytes = 4096;

std::shared_ptr<cache::RedisStore> makeRedisStore(const registry::CacheConfig::Redis& config) {
  cache::RedisStoreOptions options;
  cache::parseRedisAddress(config.address, options);
  if (!config.passwordFile.empty()) {
    options.password =
        readBoundedFile(config.passwordFile, kMaxPasswordFileBytes, "redis password file");
    // Secrets mounted from files often end with a newline that is not part of the password.
    while (!options.password.empty() &&
           (options.password.back() == '\n' || options.password.back() == '\r')) {
      options.password.pop_back();
    }
  }
  options.keyPrefix = config.keyPrefix;
  options.connectTimeout = config.timeout;
  options.commandTimeout = config.timeout;
  log::info("redis cache configured",
            {{"address", config.address}, {"password", !options.password.empty()}});
  return std::make_shared<cache::RedisStore>(std::move(options));
}

/// The second level behind the memory caches: the directory, then Redis; null when neither.
cache::EntryStorePtr makeStore(const registry::CacheConfig& config, CacheParts& parts) {
  std::vector<cache::EntryStorePtr> tiers;
  if (!config.dir.empty()) {
    parts.directory = std::make_shared<cache::DirectoryStore>(
        cache::DirectoryStoreOptions{config.dir, static_cast<std::size_t>(config.dirBytes)});
    tiers.push_back(parts.directory);
  }
  if (!config.redis.address.empty()) {
    parts.redis = makeRedisStore(config.redis);
    tiers.push_back(parts.redis);
  }
  if (tiers.empty()) return nullptr;
  if (tiers.size() == 1) return tiers.front();
  return std::make_shared<cache::TieredStore>(std::move(tiers));
}

}  // namespace

service::FetcherOptions makeFetcherOptions(const std::string& registryConfigPath,
                                           const std::string& platformFlag, CacheParts* parts) {
  registry::RegistryConfig config;
  if (!registryConfigPath.empty()) config = registry::RegistryConfig::load(registryConfigPath);
  registry::DistributionRegistryOptions options;
  options.config = config;
  if (!config.dockerConfig.empty()) {
    options.credentials = registry::DockerConfig::load(config.dockerConfig);
  }
  auto distribution = std::make_shared<registry::DistributionRegistry>(std::move(options));
  CacheParts built;
  const cache::EntryStorePtr store = makeStore(config.cache, built);
  cache::CacheOptions cacheOptions;
  cacheOptions.maxBytes = static_cast<std::size_t>(config.cache.memoryBytes);
  cacheOptions.tagTtl = config.cache.tagTtl;
  built.facts = std::make_shared<cache::CachingRegistry>(distribution, cacheOptions, store);
  service::FetcherOptions fetcher;
  fetcher.registry = built.facts;
  // Asking the cache directly lets a cached image skip the fetch queue.
  fetcher.cache = built.facts;
  fetcher.platform = platformFlag.empty() ? config.platform : image::Platform::parse(platformFlag);
  fetcher.files.cacheBytes = static_cast<std::size_t>(config.cache.layerIndexMemoryBytes);
  fetcher.files.store = store;
  fetcher.files.limits.maxUncompressedBytes = config.layers.maxUncompressedBytes;
  fetcher.files.limits.maxEntries = config.layers.maxEntries;
  fetcher.files.limits.maxPathLength = static_cast<std::size_t>(config.layers.maxPathLength);
  fetcher.files.limits.maxIndexBytes = config.layers.maxIndexBytes;
  if (parts != nullptr) *parts = std::move(built);
  return fetcher;
}

ReloadableRegistry::ReloadableRegistry(const service::FetcherOptions& built, CacheParts parts)
    : platform_(built.platform) {
  replace(built, std::move(parts));
}

void ReloadableRegistry::replace(const service::FetcherOptions& built, CacheParts parts) {
  current_.store(
      std::make_shared<const Current>(Current{built.registry, built.cache, std::move(parts)}));
}

image::ImageFacts ReloadableRegistry::fetchFacts(const image::ImageRef& ref,
                                                 const image::Platform& platform,
                                                 Deadline deadline) {
  const auto current = current_.load();
  return current->registry->fetchFacts(ref, platform, deadline);
}

void ReloadableRegistry::fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                                   const registry::BlobSink& sink, Deadline deadline) {
  const auto current = current_.load();
  current->registry->fetchBlob(ref, blob, sink, deadline);
}

std::optional<image::ImageFacts> ReloadableRegistry::cached(const image::ImageRef& ref,
                                                            const image::Platform& platform) {
  const auto current = current_.load();
  return current->cache ? current->cache->cached(ref, platform) : std::nullopt;
}

std::shared_ptr<ReloadableRegistry> makeReloadable(service::FetcherOptions& options,
                                                   CacheParts parts) {
  auto reloadable = std::make_shared<ReloadableRegistry>(options, std::move(parts));
  options.registry = reloadable;
  options.cache = reloadable;
  return reloadable;
}

void routeLocalImages(service::FetcherOptions& fetcher,
                      std::map<image::ImageRef, registry::LocalImagePtr> images) {
  if (images.empty()) return;
  fetcher.registry =
      std::make_shared<registry::LocalImageRegistry>(std::move(images), fetcher.registry);
}

}  // namespace imagegate::cli
