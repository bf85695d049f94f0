#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/facts_cache.h"
#include "common/deadline.h"
#include "image/image_facts.h"
#include "policy/evaluator.h"
#include "policy/plan.h"
#include "registry/registry.h"
#include "service/layer_files.h"

// Gets the image facts a review plan asks for: from the cache on the caller's thread, then from
// the registries on a bounded, per-host-fair pool. The webhook and `imagegate check` share it,
// so both fetch the same way and within the same limits.
namespace imagegate::service {

class FetchScheduler;

struct FetcherOptions {
  /// Where image facts come from; null means none are fetched and rules that need them are
  /// judged by each policy's onFetchError.
  registry::RegistryPtr registry;
  /// Facts already known, looked up on the calling thread before any fetch is queued; usually
  /// the registry itself (a CachingRegistry). Null: every image goes through the registry.
  cache::FactsCachePtr cache;
  image::Platform platform;  ///< Platform picked from multi-arch image indexes.
  std::size_t threads = 16;  ///< Images fetched at once, across all reviews.
  /// Images fetched at once from one registry host: a host that never answers holds no more
  /// fetch threads than this.
  std::size_t perRegistry = 4;
  /// After a registry host times out, refuses or answers 5xx, its fetches fail at once, saying
  /// so, for this long (0: every fetch asks the registry).
  std::chrono::milliseconds failureMemory{10'000};
  /// Layer scanning and its caches, for rules on the files of images.
  LayerFilesOptions files;
  /// How long a fetch or layer scan may go on after the review that started it has been
  /// answered, so that it fills the caches and the next review of the image is fast ("image
  /// facts still loading"). Zero: it ends at the review's deadline. `serve` sets it to
  /// --max-review-timeout.
  std::chrono::milliseconds backgroundTime{0};
};

class FactsFetcher {
 public:
  /// `options.registry` must be set.
  explicit FactsFetcher(FetcherOptions options);
  /// Drops what is queued and waits for the fetches running.
  ~FactsFetcher();
  FactsFetcher(const FactsFetcher&) = delete;
  FactsFetcher& operator=(const FactsFetcher&) = delete;

  /// Puts into `facts` what is known without a registry round trip (never blocks on a fetch),
  /// and returns the images of `plan` still to fetch.
  std::vector<image::ImageRef> lookUpKnown(const policy::ReviewPlan& plan,
                                           policy::ImageFactsMap& facts) const;

  /// Fetches `images` in parallel and puts each one's facts, or why there are none, into `facts`,
  /// returning by `deadline`; and, for the images whose `plan` needs files, their merged
  /// filesystem or filesError. A fetch still running then finishes in the background (bounded by
  /// options.backgroundTime past its start) and fills the caches. Images lookUpKnown() already gave
  /// facts are not fetched again.
  void fetch(const policy::ReviewPlan& plan, const std::vector<image::ImageRef>& images,
             Deadline deadline, policy::ImageFactsMap& facts) const;

  /// Refuses further fetches and fails the queued ones; fetches running go on.
  void stop();
  /// Waits until no fetch is running, or until `until`; true when none is.
  bool waitIdle(std::optional<SteadyClock::time_point> until);
  /// One line per fetch running, for the shutdown log.
  std::vector<std::string> describeRunning() const;
  /// The layer-index cache's entries, bytes, hits, misses and evictions.
  cache::CacheStats layerCacheStats() const;

 private:
  FetcherOptions options_;
  std::unique_ptr<FetchScheduler> scheduler_;
  std::unique_ptr<LayerFiles> files_;
};

}  // namespace imagegate::service
