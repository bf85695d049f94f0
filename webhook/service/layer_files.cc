#include "service/layer_files.h"

#include <algorithm>
#include <utility>

#include "common/error.h"
#include "common/log.h"
#include "layers/media_type.h"
#include "service/task_pool.h"

namespace imagegate::service {
namespace {

/// "layer 2/5 (sha256:0123456789ab) of registry.example/app:1"
std::string describeLayer(const image::ImageFacts& facts, std::size_t i) {
  const std::string& digest = facts.layers[i].digest;
  const std::size_t colon = digest.find(':');
  const std::string shortDigest =
      colon == std::string::npos ? digest : digest.substr(0, std::min(digest.size(), colon + 13));
  return "layer " + std::to_string(i + 1) + "/" + std::to_string(facts.layers.size()) + " (" +
         shortDigest + ") of " + facts.ref.str();
}

std::shared_future<LayerIndexPtr> readyFuture(LayerIndexPtr index) {
  std::promise<LayerIndexPtr> promise;
  promise.set_value(std::move(index));
  return promise.get_future().share();
}

}  // namespace

LayerIndexCache::Claim LayerIndexCache::lookupOrClaim(const std::string& digest) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto found = entries_.find(digest); found != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second.lru);
    ++hits_;
    return {readyFuture(found->second.index), false};
  }
  if (const auto flying = flights_.find(digest); flying != flights_.end()) {
    ++hits_;
    return {flying->second->future, false};
  }
  ++misses_;
  auto flight = std::make_unique<Flight>();
  flight->future = flight->promise.get_future().share();
  Claim claim{flight->future, true};
  flights_.emplace(digest, std::move(flight));
  return claim;
}

void LayerIndexCache::complete(const std::string& digest, LayerIndexPtr index) {
  std::unique_ptr<Flight> flight;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto flying = flights_.find(digest);
    if (flying == flights_.end()) return;
    flight = std::move(flying->second);
    flights_.erase(flying);
    const std::size_t bytes = index->memoryBytes();
    // An index larger than the whole budget is handed to its waiters but not kept.
    if (bytes <= maxBytes_ && entries_.count(digest) == 0) {
      lru_.push_front(digest);
      entries_.emplace(digest, Entry{index, bytes, lru_.begin()});
      bytes_ += bytes;
      evictOverBudget();
    }
  }
  flight->promise.set_value(std::move(index));
}

void LayerIndexCache::fail(const std::string& digest, std::exception_ptr error) {
  std::unique_ptr<Flight> flight;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto flying = flights_.find(digest);
    if (flying == flights_.end()) return;
    flight = std::move(flying->second);
    flights_.erase(flying);
  }
  flight->promise.set_exception(std::move(error));
}

void LayerIndexCache::evictOverBudget() {
  while (bytes_ > maxBytes_ && !lru_.empty()) {
    const auto oldest = entries_.find(lru_.back());
    bytes_ -= oldest->second.bytes;
    entries_.erase(oldest);
    lru_.pop_back();
    ++evictions_;
  }
}

cache::CacheStats LayerIndexCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {entries_.size(), bytes_, hits_, misses_, evictions_};
}

std::size_t LayerIndexCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::size_t LayerIndexCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

std::size_t LayerIndexCache::scansInFlight() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return flights_.size();
}

LayerFiles::LayerFiles(registry::RegistryPtr registry, LayerFilesOptions options)
    : registry_(std::move(registry)),
      options_(std::move(options)),
      layers_(options_.cacheBytes),
      pool_(std::make_unique<TaskPool>(std::max<std::size_t>(1, options_.threads),
                                       options_.threadsPerHost)) {}

LayerFiles::~LayerFiles() {
  stop();
  pool_.reset();  // runs what is queued (each fails at once) and joins
}

MergedFilesystemPtr LayerFiles::cached(const std::string& manifestDigest) const {
  std::lock_guard<std::mutex> lock(mergedMutex_);
  return cachedLocked(manifestDigest);
}

MergedFilesystemPtr LayerFiles::cachedLocked(const std::string& manifestDigest) const {
  for (const auto& [digest, files] : merged_) {
    if (digest == manifestDigest) return files;
  }
  return nullptr;
}

MergedFilesystemPtr LayerFiles::mergeOnce(
    const std::string& manifestDigest,
    std::vector<std::shared_ptr<const image::LayerIndex>> indexes, Deadline deadline) {
  std::promise<MergedFilesystemPtr> merged;
  {
    std::unique_lock<std::mutex> lock(mergedMutex_);
    if (MergedFilesystemPtr files = cachedLocked(manifestDigest)) return files;
    const auto other = merging_.find(manifestDigest);
    if (other != merging_.end()) {
      const std::shared_future<MergedFilesystemPtr> theirs = other->second;
      lock.unlock();
      if (theirs.wait_until(deadline.at()) != std::future_status::ready) return nullptr;
      return theirs.get();  // their exception, if the layers could not be applied
    }
    merging_.emplace(manifestDigest, merged.get_future().share());
  }
  try {
    auto files = std::make_shared<const image::MergedFilesystem>(std::move(indexes));
    std::lock_guard<std::mutex> lock(mergedMutex_);
    rememberLocked(manifestDigest, files);
    merging_.erase(manifestDigest);
    merged.set_value(files);
    return files;
  } catch (...) {
    std::lock_guard<std::mutex> lock(mergedMutex_);
    merging_.erase(manifestDigest);
    merged.set_exception(std::current_exception());
    throw;
  }
}

void LayerFiles::rememberLocked(const std::string& manifestDigest, MergedFilesystemPtr files) {
  merged_.remove_if([&](const auto& entry) { return entry.first == manifestDigest; });
  merged_.emplace_front(manifestDigest, std::move(files));
  while (merged_.size() > options_.mergedImages) merged_.pop_back();
}

LayerFiles::Pending LayerFiles::start(const image::ImageFacts& facts, Deadline deadline) {
  Pending pending;
  pending.facts = facts;
  pending.layers.resize(facts.layers.size());
  for (std::size_t i = 0; i < facts.layers.size(); ++i) {
    const image::Descriptor& layer = facts.layers[i];
    layers::LayerMediaType mediaType;
    try {
      mediaType = layers::classifyLayerMediaType(layer.mediaType);
    } catch (const Error& e) {
      pending.error = "cannot read the files of " + describeLayer(facts, i) + ": " + e.what();
      return pending;
    }
    if (mediaType.foreign) {
      pending.note += (pending.note.empty() ? "" : "; ") + describeLayer(facts, i) +
                      " is a foreign layer, not fetched: its files are not judged";
      continue;
    }
    LayerIndexCache::Claim claim = layers_.lookupOrClaim(layer.digest);
    pending.layers[i] = claim.result;
    if (!claim.mustScan) continue;
    if (queued_.fetch_add(1) >= options_.maxQueuedScans || stopping_) {
      --queued_;
      layers_.fail(layer.digest,
                   std::make_exception_ptr(Error(
                       stopping_ ? "imagegate is shutting down"
                                 : "too many layers are waiting to be scanned (" +
                                       std::to_string(options_.maxQueuedScans) + "); try again")));
      continue;
    }
    pool_->post(facts.ref.registry, [this, ref = facts.ref, layer, mediaType, deadline] {
      --queued_;
      scan(ref, layer, mediaType, deadline);
    });
  }
  return pending;
}

void LayerFiles::scan(const image::ImageRef& ref, const image::Descriptor& layer,
                      const layers::LayerMediaType& mediaType, Deadline deadline) {
  try {
    if (stopping_) throw Error("imagegate is shutting down");
    if (deadline.expired()) {
      throw registry::FetchError(registry::FetchError::Kind::kTimeout,
                                 "the admission deadline passed before the layer was fetched");
    }
    if (LayerIndexPtr stored = loadStored(layer.digest)) {
      layers_.complete(layer.digest, std::move(stored));
      return;
    }
    layers::LayerScanner scanner(mediaType, layer.digest, layer.size, options_.limits);
    registry_->fetchBlob(
        ref, layer, [&scanner](std::string_view chunk) { scanner.feed(chunk); }, deadline);
    auto index = std::make_shared<const image::LayerIndex>(scanner.finish());
    layers_.complete(layer.digest, index);  // waiters first, then the slower store
    if (options_.store) {
      options_.store->save(cache::EntryKind::kLayerIndex, layer.digest, index->serialize());
    }
  } catch (...) {
    layers_.fail(layer.digest, std::current_exception());
  }
}

LayerIndexPtr LayerFiles::loadStored(const std::string& digest) const {
  if (!options_.store) return nullptr;
  const auto payload = options_.store->load(cache::EntryKind::kLayerIndex, digest);
  if (!payload) return nullptr;
  try {
    return std::make_shared<const image::LayerIndex>(image::LayerIndex::deserialize(*payload));
  } catch (const Error& e) {
    log::warn("ignoring a stored layer index that cannot be read; scanning the layer",
              {{"layer", digest}, {"reason", e.what()}});
    return nullptr;
  }
}

void LayerFiles::finish(Pending& pending, Deadline deadline, policy::ImageLookup& lookup) {
  lookup.filesNote = pending.note;
  if (!pending.error.empty()) {
    lookup.filesError = pending.error;
    return;
  }
  std::vector<std::shared_ptr<const image::LayerIndex>> indexes;
  indexes.reserve(pending.layers.size());
  for (std::size_t i = 0; i < pending.layers.size(); ++i) {
    auto& future = pending.layers[i];
    if (!future.valid()) {  // foreign: an empty layer keeps the layer numbers of the manifest
      indexes.push_back(std::make_shared<const image::LayerIndex>());
      continue;
    }
    if (future.wait_until(deadline.at()) != std::future_status::ready) {
      lookup.filesError = "timed out reading the files of " + describeLayer(pending.facts, i) +
                          " within the admission deadline; image facts still loading: the scan "
                          "goes on and the next review will find it cached";
      return;
    }
    try {
      indexes.push_back(future.get());
    } catch (const std::exception& e) {
      lookup.filesError =
          "cannot read the files of " + describeLayer(pending.facts, i) + ": " + e.what();
      return;
    }
  }
  try {
    if (!pending.note.empty()) {  // foreign layers: not kept, so not shared
      lookup.files = std::make_shared<const image::MergedFilesystem>(std::move(indexes));
    } else if (!(lookup.files =
                     mergeOnce(pending.facts.manifestDigest, std::move(indexes), deadline))) {
      lookup.filesError = "timed out applying the layers of " + pending.facts.ref.str() +
                          " within the admission deadline; image facts still loading: the next "
                          "review will find them cached";
    }
  } catch (const std::exception& e) {
    lookup.filesError = "cannot apply the layers of " + pending.facts.ref.str() + ": " + e.what();
  }
}

bool LayerFiles::waitIdle(std::optional<SteadyClock::time_point> until) {
  return pool_->waitIdle(until);
}

}  // namespace imagegate::service
