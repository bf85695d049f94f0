#include "cache/rule_result_cache.h"

namespace imagegate::cache {

RuleResultCache::RuleResultCache(std::size_t maxBytes) : maxBytes_(maxBytes) {}

std::size_t RuleResultCache::entryBytes(std::string_view key, const policy::Findings& findings) {
  // A list node, a hash node and the shared vector's control block, roughly.
  constexpr std::size_t kBookkeeping = sizeof(Entry) + 96;
  std::size_t bytes = kBookkeeping + key.size() + findings.capacity() * sizeof(policy::Finding);
  for (const policy::Finding& finding : findings) {
    bytes += finding.message.capacity() + finding.remediation.capacity();
    bytes += finding.files.capacity() * sizeof(policy::FileFinding);
    for (const policy::FileFinding& file : finding.files) {
      bytes += file.path.capacity() + file.layerDigest.capacity() + file.history.capacity() +
               file.detail.capacity();
    }
  }
  return bytes;
}

bool RuleResultCache::enterRevision(std::uint64_t revision) {
  if (revision < revision_) return false;
  if (revision > revision_) {
    index_.clear();
    lru_.clear();
    bytes_ = 0;
    revision_ = revision;
  }
  return true;
}

std::shared_ptr<const policy::Findings> RuleResultCache::find(std::uint64_t revision,
                                                              std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!enterRevision(revision)) {
    ++misses_;
    return nullptr;
  }
  const auto found = index_.find(key);
  if (found == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, found->second);
  return found->second->findings;
}

void RuleResultCache::store(std::uint64_t revision, std::string key,
                            std::shared_ptr<const policy::Findings> findings) {
  if (!findings) return;
  const std::size_t bytes = entryBytes(key, *findings);
  std::lock_guard<std::mutex> lock(mutex_);
  // An entry larger than the whole budget is not kept; one already there (another review of the
  // same image got here first) holds the same findings.
  if (!enterRevision(revision) || bytes > maxBytes_ || index_.count(key) != 0) return;
  lru_.push_front(Entry{std::move(key), std::move(findings), bytes});
  index_.emplace(lru_.front().key, lru_.begin());
  bytes_ += bytes;
  evictOverBudget();
}

void RuleResultCache::evictOverBudget() {
  while (bytes_ > maxBytes_ && !lru_.empty()) {
    const Entry& oldest = lru_.back();
    bytes_ -= oldest.bytes;
    index_.erase(oldest.key);
    lru_.pop_back();
    ++evictions_;
  }
}

CacheStats RuleResultCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {index_.size(), bytes_, hits_, misses_, evictions_};
}

}  // namespace imagegate::cache
