#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cache/entry_store.h"

struct redisContext;

// Image facts and layer indexes shared by replicas through Redis (hiredis), so a layer one replica
// scanned is never scanned by another. Values are the codec's verified envelopes, under keys that
// carry a prefix, the payload format version, the kind and the cache key. Redis is an
// optimisation, never a dependency: every call has a short connect and command timeout, and a
// lost or slow Redis is skipped for a while (a warning in the log, at most one per interval)
// while the local caches go on; a review never fails because of it.
namespace imagegate::cache {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  ///< AUTH when not empty; never logged.
  std::string keyPrefix = "imagegate:";
  std::chrono::milliseconds connectTimeout{200};
  std::chrono::milliseconds commandTimeout{200};
  /// After a failure Redis is not asked again for this long (then a new connection is tried).
  std::chrono::milliseconds retryAfter{5'000};
  /// Values expire after this long (0: never), so Redis does not fill with images long gone.
  std::chrono::seconds ttl{7 * 24 * 3600};
  std::size_t maxValueBytes = std::size_t{128} << 20;
};

/// Parses "host:port" ("[v6]:port"; the port defaults to 6379). Throws Error on anything else.
void parseRedisAddress(const std::string& address, RedisStoreOptions& options);

class RedisStore : public EntryStore {
 public:
  /// Does not connect: the first use does, so a Redis down at start delays nothing.
  explicit RedisStore(RedisStoreOptions options);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // EntryStore
  std::optional<std::string> load(EntryKind kind, const std::string& key) override;
  void save(EntryKind kind, const std::string& key, std::string_view payload) override;
  /// Hits and misses of load(); misses include the lookups skipped while Redis was unusable.
  CacheStats stats() const override;

  /// The Redis key of (kind, key).
  std::string redisKey(EntryKind kind, const std::string& key) const;
  /// Commands that failed (connection lost, timeout, error reply), for tests and metrics.
  std::uint64_t failures() const { return failures_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  /// A connection from the idle list or a new one; null while Redis is skipped or unreachable.
  redisContext* acquire();
  void release(redisContext* context);
  /// Closes a connection that failed and skips Redis for options_.retryAfter.
  void failed(redisContext* context, const std::string& what);

  const RedisStoreOptions options_;
  mutable std::mutex mutex_;
  std::vector<redisContext*> idle_;
  Clock::time_point skipUntil_{};
  Clock::time_point lastWarning_{};
  bool down_ = false;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace imagegate::cache
