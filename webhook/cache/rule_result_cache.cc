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
    // Findings being computed for the old policies are no use to anyone waiting now.
    for (auto& [key, claim] : claims_) claim->settled = true;
    claims_.clear();
    settled_.notify_all();
  }
  return true;
}

std::shared_ptr<const policy::Findings> RuleResultCache::lookUp(std::string_view key) {
  const auto found = index_.find(key);
  if (found == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, found->second);
  return found->second->findings;
}

std::shared_ptr<const policy::Findings> RuleResultCache::find(std::uint64_t revision,
                                                              std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto findings = enterRevision(revision) ? lookUp(key) : nullptr;
  ++(findings ? hits_ : misses_);
  return findings;
}

policy::MemoLookup RuleResultCache::findOrClaim(std::uint64_t revision, std::string_view key,
                                                bool waitForOthers) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!enterRevision(revision)) {
    ++misses_;
    return {};
  }
  if (auto findings = lookUp(key)) {
    ++hits_;
    return {std::move(findings)};
  }
  const auto claimed = claims_.find(std::string(key));
  if (claimed == claims_.end()) {
    ++misses_;
    claims_.emplace(std::string(key),
                    std::make_shared<Claim>(
                        Claim{.revision = revision, .settled = false, .findings = nullptr}));
    return {nullptr, true};
  }
  const std::shared_ptr<Claim> claim = claimed->second;
  if (waitForOthers) {
    settled_.wait_for(lock, kMaxWait, [&claim] { return claim->settled; });
  }
  ++(claim->findings ? hits_ : misses_);
  return {claim->findings};
}

void RuleResultCache::settle(std::uint64_t revision, std::string_view key,
                             std::shared_ptr<const policy::Findings> findings) {
  const auto claimed = claims_.find(std::string(key));
  if (claimed == claims_.end() || claimed->second->revision != revision) return;
  claimed->second->settled = true;
  claimed->second->findings = std::move(findings);
  claims_.erase(claimed);
  settled_.notify_all();
}

void RuleResultCache::abandon(std::uint64_t revision, std::string_view key) {
  std::lock_guard<std::mutex> lock(mutex_);
  settle(revision, key, nullptr);
}

void RuleResultCache::store(std::uint64_t revision, std::string key,
                            std::shared_ptr<const policy::Findings> findings) {
  if (!findings) {
    abandon(revision, key);
    return;
  }
  const std::size_t bytes = entryBytes(key, *findings);
  std::lock_guard<std::mutex> lock(mutex_);
  settle(revision, key, findings);
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
