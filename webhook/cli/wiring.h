#pragma once

#include <memory>
#include <string>

#include "cache/caching_registry.h"
#include "cache/directory_store.h"
#include "cache/redis_store.h"
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

}  // namespace imagegate::cli
