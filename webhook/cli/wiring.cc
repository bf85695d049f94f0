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

void routeLocalImages(service::FetcherOptions& fetcher,
                      std::map<image::ImageRef, registry::LocalImagePtr> images) {
  if (images.empty()) return;
  fetcher.registry =
      std::make_shared<registry::LocalImageRegistry>(std::move(images), fetcher.registry);
}

}  // namespace imagegate::cli
