#pragma once

#include <string>

#include "registry/registry.h"
#include "registry/registry_config.h"

namespace imagegate::cli {

/// The registry client every command uses: a digest-keyed cache over the Distribution API
/// client, configured from the --registry-config file (empty path: defaults, anonymous access).
struct RegistrySetup {
  registry::RegistryConfig config;
  registry::RegistryPtr registry;
};

/// Throws imagegate::Error naming the file and the problem.
RegistrySetup makeRegistry(const std::string& registryConfigPath);

}  // namespace imagegate::cli
