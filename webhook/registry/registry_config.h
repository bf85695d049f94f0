#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "registry/registry.h"

// The registry client's configuration file, shared by `serve` and `check` (--registry-config):
//
//   platform: linux/amd64                      # default platform for image indexes
//   dockerConfig: /etc/imagegate/docker/config.json
//   timeouts: {connect: 2s, request: 5s}
//   registries:
//     - host: registry.internal:5000           # host[:port] as in image references
//       caFile: /etc/imagegate/ca/registry.crt # extra CA bundle for this registry
//       insecure: false                        # true = plain HTTP (local test registries only)
namespace imagegate::registry {

struct RegistryHostConfig {
  std::string host;    ///< Lowercased host[:port].
  std::string caFile;  ///< Empty: system CAs only.
  bool insecure = false;
};

struct RegistryConfig {
  image::Platform platform;  ///< linux/amd64 unless configured.
  std::string dockerConfig;  ///< Path of a Docker config.json; empty for anonymous access.
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds requestTimeout{5000};
  std::vector<RegistryHostConfig> registries;

  /// The entry for `host` (compared case-insensitively), or nullptr.
  const RegistryHostConfig* find(std::string_view host) const;

  /// Parses YAML. Throws LoadError (an Error) listing every problem, one per line as
  /// "<sourceName>:<line>:<column>: <what>" (1-based, in file order): syntax errors, unknown
  /// fields, wrong types, booleans other than true/false, bad durations or platforms, duplicate
  /// hosts. A null value means the default. Relative paths (dockerConfig, caFile) are resolved
  /// against `baseDir` when it is not empty.
  static RegistryConfig parse(std::string_view yaml, const std::string& sourceName,
                              const std::string& baseDir = "");
  /// Reads `path` (at most 1 MiB); relative paths inside resolve against the file's directory.
  static RegistryConfig load(const std::string& path);
};

}  // namespace imagegate::registry
