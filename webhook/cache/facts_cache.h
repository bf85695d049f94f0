#pragma once

#include <optional>

#include "registry/registry.h"

// What the admission service asks before it queues a fetch: facts already in memory, answered
// without a registry round trip and without waiting for a fetch in flight. A header-only
// interface, so the service can use it without linking the cache module.
namespace imagegate::cache {

class FactsCache {
 public:
  virtual ~FactsCache() = default;

  /// The facts of `ref` on `platform` if they are known and fresh; never blocks on a fetch and
  /// never calls a registry. Counts as a use of the entry (it stays cached longer).
  virtual std::optional<image::ImageFacts> cached(const image::ImageRef& ref,
                                                  const image::Platform& platform) = 0;
};

using FactsCachePtr = std::shared_ptr<FactsCache>;

}  // namespace imagegate::cache
