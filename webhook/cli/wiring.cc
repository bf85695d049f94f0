#include "cli/wiring.h"

#include <memory>

#include "cache/caching_registry.h"
#include "registry/distribution_registry.h"
#include "registry/registry_config.h"

namespace imagegate::cli {

service::FetcherOptions makeFetcherOptions(const std::string& registryConfigPath,
                                           const std::string& platformFlag) {
  registry::RegistryConfig config;
  if (!registryConfigPath.empty()) config = registry::RegistryConfig::load(registryConfigPath);
  registry::DistributionRegistryOptions options;
  options.config = config;
  if (!config.dockerConfig.empty()) {
    options.credentials = registry::DockerConfig::load(config.dockerConfig);
  }
  auto distribution = std::make_shared<registry::DistributionRegistry>(std::move(options));
  auto caching = std::make_shared<cache::CachingRegistry>(distribution, cache::CacheOptions{});
  service::FetcherOptions fetcher;
  fetcher.registry = caching;
  // Asking the cache directly lets a cached image skip the fetch queue.
  fetcher.cache = caching;
  fetcher.platform = platformFlag.empty() ? config.platform : image::Platform::parse(platformFlag);
  return fetcher;
}

ReloadableRegistry::ReloadableRegistry(const service::FetcherOptions& built)
    : platform_(built.platform) {
  replace(built);
}

void ReloadableRegistry::replace(const service::FetcherOptions& built) {
  current_.store(std::make_shared<const Current>(Current{built.registry, built.cache}));
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

std::shared_ptr<ReloadableRegistry> makeReloadable(service::FetcherOptions& options) {
  auto reloadable = std::make_shared<ReloadableRegistry>(options);
  options.registry = reloadable;
  options.cache = reloadable;
  return reloadable;
}

}  // namespace imagegate::cli
