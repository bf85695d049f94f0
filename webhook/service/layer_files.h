#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache_stats.h"
#include "cache/entry_store.h"
#include "common/deadline.h"
#include "image/file_index.h"
#include "image/image_facts.h"
#include "layers/layer_scanner.h"
#include "policy/evaluator.h"
#include "registry/registry.h"

// The files of images, for rules that judge what is inside them: each layer blob streamed from
// the registry into a LayerScanner, the indexes cached by layer digest (base layers are shared by
// most images, so most reviews scan only the layers that are new to them), and the merged
// filesystems cached by manifest digest so that a second review of an image does no work.
namespace imagegate::service {

using LayerIndexPtr = std::shared_ptr<const image::LayerIndex>;
using MergedFilesystemPtr = std::shared_ptr<const image::MergedFilesystem>;

/// Layer indexes by layer digest within a byte budget (LayerIndex::memoryBytes()), least recently
/// used first out. Single flight: while one caller scans a digest, every other caller of the same
/// digest gets the same future instead of a scan of its own. Failures are not remembered: the
/// next review tries again.
class LayerIndexCache {
 public:
  explicit LayerIndexCache(std::size_t maxBytes) : maxBytes_(maxBytes) {}

  struct Claim {
    std::shared_future<LayerIndexPtr> result;
    /// True when the caller must scan the layer and call complete() or fail().
    bool mustScan = false;
  };
  Claim lookupOrClaim(const std::string& digest);
  void complete(const std::string& digest, LayerIndexPtr index);
  void fail(const std::string& digest, std::exception_ptr error);

  std::size_t bytes() const;
  std::size_t entries() const;
  std::size_t scansInFlight() const;
  /// Hits are lookups answered by an index in memory or by a scan already in flight; misses are
  /// the claims that had to scan (or read a second-level store).
  cache::CacheStats stats() const;

 private:
  struct Entry {
    LayerIndexPtr index;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  struct Flight {
    std::promise<LayerIndexPtr> promise;
    std::shared_future<LayerIndexPtr> future;
  };
  void evictOverBudget();  // expects mutex_ held

  const std::size_t maxBytes_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> lru_;  ///< Most recently used first.
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t evictions_ = 0;
  std::map<std::string, std::unique_ptr<Flight>> flights_;
};

struct LayerFilesOptions {
  std::size_t cacheBytes = std::size_t{256} << 20;  ///< Layer index cache budget.
  std::size_t mergedImages = 64;                    ///< Merged filesystems kept.
  /// Layers scanned at once across all reviews (each scan also runs a tar thread); also the
  /// bound on the layers of one image scanned concurrently.
  std::size_t threads = 3;
  /// Layers scanned at once from one registry host: fewer than `threads`, so that a registry
  /// that drips or hangs leaves threads to the layers of every other registry.
  std::size_t threadsPerHost = 2;
  std::size_t maxQueuedScans = 512;  ///< Scans waiting for a thread; beyond, the layer fails.
  layers::ScanLimits limits;
  /// Asked for a layer's index before its blob is fetched, and given every index scanned: a
  /// cache directory, Redis shared with other replicas. Null: memory only.
  cache::EntryStorePtr store;
};

class TaskPool;

/// Fills ImageLookup::files for images whose rules judge their files.
class LayerFiles {
 public:
  LayerFiles(registry::RegistryPtr registry, LayerFilesOptions options);
  /// Fails the scans still queued and waits for the running ones.
  ~LayerFiles();
  LayerFiles(const LayerFiles&) = delete;
  LayerFiles& operator=(const LayerFiles&) = delete;

  /// The merged filesystem of a manifest already built, or null; never blocks on a scan.
  MergedFilesystemPtr cached(const std::string& manifestDigest) const;

  /// The layers of one image on their way: started by start(), collected by finish().
  struct Pending {
    image::ImageFacts facts;
    std::vector<std::shared_future<LayerIndexPtr>> layers;  ///< Invalid for foreign layers.
    std::string note;
    std::string error;  ///< Set when the layers could not even be started.
  };
  /// Queues the scans `facts` needs that no cache or other review has (bounded, within
  /// `deadline`) and returns at once.
  Pending start(const image::ImageFacts& facts, Deadline deadline);
  /// Waits for the layers until `deadline` and puts the merged filesystem, or why there is none,
  /// into `lookup`. A scan still running afterwards finishes in the background and fills the cache.
  void finish(Pending& pending, Deadline deadline, policy::ImageLookup& lookup);

  /// Refuses further scans; queued ones fail at once.
  void stop() { stopping_ = true; }
  bool waitIdle(std::optional<SteadyClock::time_point> until);

  const LayerIndexCache& layerCache() const { return layers_; }

 private:
  void scan(const image::ImageRef& ref, const image::Descriptor& layer,
            const layers::LayerMediaType& mediaType, Deadline deadline);
  /// The index of `digest` from options_.store, or null.
  LayerIndexPtr loadStored(const std::string& digest) const;
  /// The merged filesystem of `manifestDigest`, built from `indexes` by the first review to get
  /// there while the others wait for it (until `deadline`; null when it passes): a Deployment's
  /// 200 replicas merge a large image once, not 200 times.
  MergedFilesystemPtr mergeOnce(const std::string& manifestDigest,
                                std::vector<std::shared_ptr<const image::LayerIndex>> indexes,
                                Deadline deadline);
  /// Expects mergedMutex_ held.
  MergedFilesystemPtr cachedLocked(const std::string& manifestDigest) const;
  void rememberLocked(const std::string& manifestDigest, MergedFilesystemPtr files);

  const registry::RegistryPtr registry_;
  const LayerFilesOptions options_;
  LayerIndexCache layers_;
  mutable std::mutex mergedMutex_;
  std::list<std::pair<std::string, MergedFilesystemPtr>> merged_;           ///< Most recent first.
  std::map<std::string, std::shared_future<MergedFilesystemPtr>> merging_;  ///< By manifest.
  std::atomic<std::size_t> queued_{0};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<TaskPool> pool_;  ///< Last: its threads use the members above.
};

}  // namespace imagegate::service
