#pragma once

#include <vector>

#include "cache/entry_store.h"

// Several stores asked in order (the cache directory, then Redis): a hit in a later one is copied
// into the earlier ones, and everything saved goes to all of them.
namespace imagegate::cache {

class TieredStore : public EntryStore {
 public:
  explicit TieredStore(std::vector<EntryStorePtr> tiers) : tiers_(std::move(tiers)) {}

  // EntryStore
  std::optional<std::string> load(EntryKind kind, const std::string& key) override {
    for (std::size_t i = 0; i < tiers_.size(); ++i) {
      auto payload = tiers_[i]->load(kind, key);
      if (!payload) continue;
      for (std::size_t j = 0; j < i; ++j) tiers_[j]->save(kind, key, *payload);
      return payload;
    }
    return std::nullopt;
  }
  void save(EntryKind kind, const std::string& key, std::string_view payload) override {
    for (const EntryStorePtr& tier : tiers_) tier->save(kind, key, payload);
  }
  /// The first tier's: each tier reports its own through its own object.
  CacheStats stats() const override { return tiers_.empty() ? CacheStats{} : tiers_[0]->stats(); }

 private:
  std::vector<EntryStorePtr> tiers_;
};

}  // namespace imagegate::cache
