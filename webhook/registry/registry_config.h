#pragma once

#include <chrono>
#include <cstdint>
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
//   cache:
//     memory: 32Mi                             # image facts in memory (bytes, LRU)
//     layerIndexMemory: 256Mi                  # per-layer file indexes in memory
//     tagTtl: 60s                              # how long a tag's resolution is trusted
//     dir: /var/cache/imagegate                # persistent entries (restarts start warm)
//     dirBytes: 1Gi
//     redis:                                   # shared by replicas
//       address: redis.cache:6379
//       passwordFile: /etc/imagegate/redis/password
//       keyPrefix: "imagegate:"
//       timeout: 200ms                         # connect and per-command
//       tls: false                             # true is refused: hiredis 0.14 has no TLS
//   layers:                                    # limits on each layer a file rule scans
//     maxUncompressed: 8Gi                     # tar bytes: stops compression bombs
//     maxEntries: 1000000                      # tar members
//     maxPathLength: 4096                      # bytes of a member name or link target
//     maxIndex: 256Mi                          # path text one layer's index may collect
namespace imagegate::registry {

struct RegistryHostConfig {
  std::string host;    ///< Lowercased host[:port].
  std::string caFile;  ///< Empty: system CAs only.
  bool insecure = false;
};

/// Where image facts and layer indexes are kept; see the cache module.
struct CacheConfig {
  std::uint64_t memoryBytes = std::uint64_t{32} << 20;
  std::uint64_t layerIndexMemoryBytes = std::uint64_t{256} << 20;
  std::chrono::milliseconds tagTtl{60'000};
  std::string dir;  ///< Empty: no persistence.
  std::uint64_t dirBytes = std::uint64_t{1} << 30;
  struct Redis {
    std::string address;  ///< host:port; empty: no Redis.
    std::string passwordFile;
    std::string keyPrefix = "imagegate:";
    std::chrono::milliseconds timeout{200};
  } redis;
};

/// Limits on what one layer may make the scanner do (layers::ScanLimits; the registry module
/// only reads them). A hostile layer hits one and its review gets an error naming it.
struct LayerLimitsConfig {
  std::uint64_t maxUncompressedBytes = std::uint64_t{8} << 30;
  std::uint64_t maxEntries = 1'000'000;
  std::uint64_t maxPathLength = 4096;
  std::uint64_t maxIndexBytes = std::uint64_t{256} << 20;
};

struct RegistryConfig {
  image::Platform platform;  ///< linux/amd64 unless configured.
  std::string dockerConfig;  ///< Path of a Docker config.json; empty for anonymous access.
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds requestTimeout{5000};
  std::vector<RegistryHostConfig> registries;
  CacheConfig cache;
  LayerLimitsConfig layers;

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
