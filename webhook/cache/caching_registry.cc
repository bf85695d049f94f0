#include "cache/caching_registry.h"

#include <optional>
#include <utility>

#include "cache/codec.h"
#include "common/error.h"
#include "common/log.h"

namespace imagegate::cache {
namespace {

std::string cacheKey(const image::ImageRef& ref, const image::Platform& platform) {
  return ref.str() + "|" + platform.str();
}

// What a std::string, a map node or a list node costs beyond its characters (libstdc++, 64-bit:
// the string object, or a node's links and allocation header, rounded up).
constexpr std::size_t kStringOverhead = 32;
constexpr std::size_t kNodeOverhead = 48;

std::size_t stringBytes(const std::string& text) {
  // Up to 15 characters live inside the string object (small-string optimisation).
  return kStringOverhead + (text.size() > 15 ? text.size() + 1 : 0);
}

std::size_t stringsBytes(const std::vector<std::string>& texts) {
  std::size_t bytes = sizeof(texts);
  for (const std::string& text : texts) bytes += stringBytes(text);
  return bytes;
}

std::size_t descriptorBytes(const image::Descriptor& descriptor) {
  return stringBytes(descriptor.mediaType) + stringBytes(descriptor.digest) + sizeof(std::uint64_t);
}

}  // namespace

std::size_t estimateFactsBytes(const std::string& key, const image::ImageFacts& facts) {
  const image::ImageConfig& config = facts.imageConfig;
  std::size_t bytes = sizeof(image::ImageFacts) + 2 * (kNodeOverhead + stringBytes(key));
  bytes += stringBytes(facts.ref.str()) * 2;  // the reference's parts, about its length twice
  bytes += stringBytes(facts.manifestDigest) + stringBytes(facts.manifestMediaType);
  bytes += stringBytes(facts.platform.os) + stringBytes(facts.platform.architecture) +
           stringBytes(facts.platform.variant);
  bytes += descriptorBytes(facts.config);
  for (const image::Descriptor& layer : facts.layers) bytes += descriptorBytes(layer);
  bytes += stringBytes(config.user) + stringBytes(config.workingDir) + stringBytes(config.os) +
           stringBytes(config.architecture);
  bytes += stringsBytes(config.env) + stringsBytes(config.entrypoint) + stringsBytes(config.cmd) +
           stringsBytes(config.exposedPorts) + stringsBytes(config.diffIds) +
           stringsBytes(config.layerHistory);
  for (const auto& [name, value] : config.labels) {
    bytes += kNodeOverhead + stringBytes(name) + stringBytes(value);
  }
  return bytes;
}

CachingRegistry::CachingRegistry(registry::RegistryPtr inner, CacheOptions options,
                                 EntryStorePtr store)
    : inner_(std::move(inner)), options_(options), store_(std::move(store)) {}

image::ImageFacts CachingRegistry::fetchThroughStore(const std::string& key,
                                                     const image::ImageRef& ref,
                                                     const image::Platform& platform,
                                                     Deadline deadline) {
  // A tag can move, so only what a digest names is shared beyond this process.
  const bool pinned = store_ && !ref.digest.empty();
  if (pinned) {
    if (const auto payload = store_->load(EntryKind::kImageFacts, key)) {
      try {
        image::ImageFacts facts = decodeFacts(*payload);
        if (facts.ref.str() != ref.str()) throw Error("stored for " + facts.ref.str());
        return facts;
      } catch (const Error& e) {
        log::warn("ignoring stored image facts that cannot be trusted",
                  {{"image", ref.str()}, {"reason", e.what()}});
      }
    }
  }
  image::ImageFacts facts = inner_->fetchFacts(ref, platform, deadline);
  if (pinned) store_->save(EntryKind::kImageFacts, key, encodeFacts(facts));
  return facts;
}

std::size_t CachingRegistry::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

CacheStats CachingRegistry::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  CacheStats stats;
  for (const auto& [key, entry] : entries_) stats.entries += entry.ready ? 1 : 0;
  stats.bytes = bytes_;
  stats.hits = hits_;
  stats.misses = misses_;
  stats.evictions = evictions_;
  return stats;
}

image::ImageFacts CachingRegistry::fetchFacts(const image::ImageRef& ref,
                                              const image::Platform& platform, Deadline deadline) {
  const std::string key = cacheKey(ref, platform);
  std::optional<std::promise<image::ImageFacts>> owned;
  std::uint64_t fetchId = 0;
  const std::shared_future<image::ImageFacts> facts = lookupOrStart(key, owned, fetchId);
  if (owned) {
    // This caller owns the fetch and runs it on its own thread; others wait on the future.
    try {
      const image::ImageFacts fetched = fetchThroughStore(key, ref, platform, deadline);
      // The value first: a ready entry's future must never block a lookup.
      owned->set_value(fetched);
      settle(key, fetchId, ref, fetched);
    } catch (...) {
      // Failures are not cached: the next review asks the registry again.
      forget(key, fetchId);
      owned->set_exception(std::current_exception());
    }
    return facts.get();
  }
  if (facts.wait_until(deadline.at()) != std::future_status::ready) {
    throw registry::FetchError(
        registry::FetchError::Kind::kTimeout,
        "timed out waiting for " + ref.str() + " to be fetched by a concurrent review");
  }
  return facts.get();
}

std::optional<image::ImageFacts> CachingRegistry::cached(const image::ImageRef& ref,
                                                         const image::Platform& platform) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = entries_.find(cacheKey(ref, platform));
  // An entry whose fetch is still running has no facts yet; the caller must not wait for it.
  // Misses are counted by fetchFacts(), which the caller goes on to.
  if (found == entries_.end() || !found->second.ready || found->second.expires <= Clock::now()) {
    return std::nullopt;
  }
  recency_.splice(recency_.begin(), recency_, found->second.recency);
  try {
    image::ImageFacts facts = found->second.facts.get();
    ++hits_;
    return facts;
  } catch (const std::exception&) {
    // Not expected (a failed fetch forgets its entry before failing the future), but a lookup
    // must never throw: the service asks on the server's I/O thread.
    return std::nullopt;
  }
}

std::shared_future<image::ImageFacts> CachingRegistry::lookupOrStart(
    const std::string& key, std::optional<std::promise<image::ImageFacts>>& owned,
    std::uint64_t& fetchId) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = entries_.find(key);
  // A fetch in flight is joined whatever the TTL: its facts will be the freshest there are.
  if (found != entries_.end() && (!found->second.ready || found->second.expires > Clock::now())) {
    recency_.splice(recency_.begin(), recency_, found->second.recency);
    ++hits_;
    return found->second.facts;
  }
  if (found != entries_.end()) erase(found);
  ++misses_;
  owned.emplace();
  recency_.push_front(key);
  Entry entry;
  entry.facts = owned->get_future().share();
  entry.recency = recency_.begin();
  entry.fetchId = fetchId = ++lastFetchId_;
  return entries_.emplace(key, std::move(entry)).first->second.facts;
}

void CachingRegistry::settle(const std::string& key, std::uint64_t fetchId,
                             const image::ImageRef& ref, const image::ImageFacts& facts) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = entries_.find(key);
  if (found == entries_.end() || found->second.fetchId != fetchId) return;
  found->second.ready = true;
  // A tag's TTL counts from when the registry answered.
  found->second.expires =
      ref.digest.empty() ? Clock::now() + options_.tagTtl : Clock::time_point::max();
  found->second.bytes = estimateFactsBytes(key, facts);
  bytes_ += found->second.bytes;
  evictOverBudget();
}

void CachingRegistry::forget(const std::string& key, std::uint64_t fetchId) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = entries_.find(key);
  if (found != entries_.end() && found->second.fetchId == fetchId) erase(found);
}

void CachingRegistry::erase(std::map<std::string, Entry>::iterator entry) {
  bytes_ -= entry->second.bytes;
  recency_.erase(entry->second.recency);
  entries_.erase(entry);
}

void CachingRegistry::evictOverBudget() {
  // From the least recently used end, skipping fetches in flight (they hold no bytes yet).
  auto candidate = recency_.end();
  while (bytes_ > options_.maxBytes && candidate != recency_.begin()) {
    --candidate;
    const auto entry = entries_.find(*candidate);
    if (!entry->second.ready) continue;
    candidate = std::next(candidate);  // erase() invalidates the element, not its successor
    erase(entry);
    ++evictions_;
  }
}

}  // namespace imagegate::cache
