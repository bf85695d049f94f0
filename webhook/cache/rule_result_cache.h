#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/cache_stats.h"
#include "policy/findings_memo.h"

// The findings of image-only rules by (image, registry facts, policy-set revision), within a byte
// budget, least recently used first out. A policy reload gives a new revision, which drops every
// finding of the old one; image facts live elsewhere and are not touched. Its own library
// (imagegate_rule_results): it needs the policy module's types, never a registry.
namespace imagegate::cache {

class RuleResultCache final : public policy::FindingsMemo {
 public:
  /// 0 keeps nothing (every lookup misses).
  explicit RuleResultCache(std::size_t maxBytes);

  /// The findings stored under `key` for `revision`, without claiming them; null when there are
  /// none, including for any revision older than the newest one seen.
  std::shared_ptr<const policy::Findings> find(std::uint64_t revision, std::string_view key);

  // policy::FindingsMemo
  policy::MemoLookup findOrClaim(std::uint64_t revision, std::string_view key,
                                 bool waitForOthers) override;
  void store(std::uint64_t revision, std::string key,
             std::shared_ptr<const policy::Findings> findings) override;
  void abandon(std::uint64_t revision, std::string_view key) override;

  /// The longest findOrClaim() waits for another caller's findings before computing its own.
  static constexpr std::chrono::seconds kMaxWait{5};

  /// Entries and bytes held, hits, misses, and evictions to stay within the budget (findings
  /// dropped by a new revision are not evictions).
  CacheStats stats() const;

  /// What one entry is counted as against the budget: its key, its findings' strings, and the
  /// bookkeeping around them.
  static std::size_t entryBytes(std::string_view key, const policy::Findings& findings);

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const policy::Findings> findings;
    std::size_t bytes = 0;
  };
  using Lru = std::list<Entry>;  ///< Most recently used first.
  /// Findings a caller has claimed and is computing; waiters hold it until it settles.
  struct Claim {
    std::uint64_t revision = 0;
    bool settled = false;
    std::shared_ptr<const policy::Findings> findings;  ///< Null when abandoned.
  };

  /// The entry under `key`, made the most recently used; null when there is none.
  std::shared_ptr<const policy::Findings> lookUp(std::string_view key);
  /// Ends the claim on `key` for `revision`, if there is one, handing `findings` to its waiters.
  void settle(std::uint64_t revision, std::string_view key,
              std::shared_ptr<const policy::Findings> findings);

  /// Drops every entry when `revision` is newer than the one held; false when it is older.
  bool enterRevision(std::uint64_t revision);
  void evictOverBudget();

  const std::size_t maxBytes_;
  mutable std::mutex mutex_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;  ///< Keys point into lru_.
  std::unordered_map<std::string, std::shared_ptr<Claim>> claims_;
  std::condition_variable settled_;
  std::uint64_t revision_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace imagegate::cache
