#include "cli/registry_setup.h"

#include <memory>

#include "cache/caching_registry.h"
#include "registry/distribution_registry.h"

namespace imagegate::cli {

RegistrySetup makeRegistry(const std::string& registryConfigPath) {
  RegistrySetup setup;
  if (!registryConfigPath.empty()) {
    setup.config = registry::RegistryConfig::load(registryConfigPath);
  }
  registry::DistributionRegistryOptions options;
  options.config = setup.config;
  if (!setup.config.dockerConfig.empty()) {
    options.credentials = registry::DockerConfig::load(setup.config.dockerConfig);
  }
  auto distribution = std::make_shared<registry::DistributionRegistry>(std::move(options));
  setup.registry = std::make_shared<cache::CachingRegistry>(distribution, cache::CacheOptions{});
  return setup;
}

}  // namespace imagegate::cli
