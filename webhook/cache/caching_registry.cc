#include "cache/caching_registry.h"

#include <optional>
#include <utility>

namespace imagegate::cache {
namespace {

std::string cacheKey(const image::ImageRef& ref, const image::Platform& platform) {
  return ref.str() + "|" + platform.str();
}

}  // namespace

CachingRegistry::CachingRegistry(registry::RegistryPtr inner, CacheOptions options)
    : inner_(std::move(inner)), options_(options) {}

std::size_t CachingRegistry::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

image::ImageFacts CachingRegistry::fetchFacts(const image::ImageRef& ref,
                                              const image::Platform& platform, Deadline deadline) {
  const std::string key = cacheKey(ref, platform);
  std::optional<std::promise<image::ImageFacts>> owned;
  const std::shared_future<image::ImageFacts> facts = lookupOrStart(key, ref, owned);
  if (owned) {
    // This caller owns the fetch and runs it on its own thread; others wait on the future.
    try {
      owned->set_value(inner_->fetchFacts(ref, platform, deadline));
    } catch (...) {
      // Failures are not cached: the next review asks the registry again.
      forget(key);
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
  if (found == entries_.end() || found->second.expires <= Clock::now()) return std::nullopt;
  const std::shared_future<image::ImageFacts>& facts = found->second.facts;
  // An entry whose fetch is still running has no facts yet; the caller must not wait for it.
  if (facts.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return std::nullopt;
  recency_.splice(recency_.begin(), recency_, found->second.recency);
  try {
    return facts.get();
  } catch (const std::exception&) {
    // Not expected (a failed fetch forgets its entry before failing the future), but a lookup
    // must never throw: the service asks on the server's I/O thread.
    return std::nullopt;
  }
}

std::shared_future<image::ImageFacts> CachingRegistry::lookupOrStart(
    const std::string& key, const image::ImageRef& ref,
    std::optional<std::promise<image::ImageFacts>>& owned) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  auto found = entries_.find(key);
  if (found != entries_.end() && found->second.expires > now) {
    recency_.splice(recency_.begin(), recency_, found->second.recency);
    return found->second.facts;
  }
  if (found != entries_.end()) {
    recency_.erase(found->second.recency);
    entries_.erase(found);
  }
  owned.emplace();
  recency_.push_front(key);
  Entry entry;
  entry.facts = owned->get_future().share();
  entry.expires = ref.digest.empty() ? now + options_.tagTtl : Clock::time_point::max();
  entry.recency = recency_.begin();
  const auto inserted = entries_.emplace(key, std::move(entry)).first;
  std::shared_future<image::ImageFacts> facts = inserted->second.facts;
  evictOverflow();
  return facts;
}

void CachingRegistry::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = entries_.find(key);
  if (found == entries_.end()) return;
  recency_.erase(found->second.recency);
  entries_.erase(found);
}

void CachingRegistry::evictOverflow() {
  while (entries_.size() > options_.maxEntries && !recency_.empty()) {
    entries_.erase(recency_.back());
    recency_.pop_back();
  }
}

}  // namespace imagegate::cache
