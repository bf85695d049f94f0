#include "cache/redis_store.h"

#include <hiredis.h>
#include <sys/time.h>

#include <charconv>

#include "common/error.h"
#include "common/log.h"

namespace imagegate::cache {
namespace {

constexpr std::size_t kMaxIdleConnections = 8;
// Warnings about an unusable Redis: at most one per this interval, however many reviews notice.
constexpr std::chrono::seconds kWarningInterval{30};

timeval toTimeval(std::chrono::milliseconds duration) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

/// Frees hiredis replies however the function returns.
struct ReplyPtr {
  redisReply* reply;
  explicit ReplyPtr(void* r) : reply(static_cast<redisReply*>(r)) {}
  ~ReplyPtr() {
    if (reply != nullptr) freeReplyObject(reply);
  }
  ReplyPtr(const ReplyPtr&) = delete;
  ReplyPtr& operator=(const ReplyPtr&) = delete;
};

}  // namespace

void parseRedisAddress(const std::string& address, RedisStoreOptions& options) {
  std::string host = address;
  std::string port = "6379";
  if (address.starts_with("[")) {
    const std::size_t close = address.find(']');
    if (close == std::string::npos) throw Error("redis address '" + address + "' lacks a ']'");
    host = address.substr(1, close - 1);
    if (close + 1 < address.size()) {
      if (address[close + 1] != ':')
        throw Error("redis address '" + address + "' is not [HOST]:PORT");
      port = address.substr(close + 2);
    }
  } else if (const std::size_t colon = address.rfind(':'); colon != std::string::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535) {
    throw Error("redis address must be HOST:PORT (port 1-65535), not '" + address + "'");
  }
  options.host = host;
  options.port = value;
}

RedisStore::RedisStore(RedisStoreOptions options) : options_(std::move(options)) {}

RedisStore::~RedisStore() {
  for (redisContext* context : idle_) redisFree(context);
}

std::string RedisStore::redisKey(EntryKind kind, const std::string& key) const {
  return options_.keyPrefix + "v" + std::to_string(payloadVersion(kind)) + ":" +
         std::string(entryKindName(kind)) + ":" + key;
}

redisContext* RedisStore::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Clock::now() < skipUntil_) return nullptr;
    if (!idle_.empty()) {
      redisContext* context = idle_.back();
      idle_.pop_back();
      return context;
    }
  }
  redisContext* context = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                                  toTimeval(options_.connectTimeout));
  if (context == nullptr || context->err != 0) {
    failed(context, std::string("cannot connect: ") +
                        (context != nullptr ? context->errstr : "out of memory"));
    return nullptr;
  }
  if (redisSetTimeout(context, toTimeval(options_.commandTimeout)) != REDIS_OK) {
    failed(context, "cannot set the command timeout");
    return nullptr;
  }
  if (!options_.password.empty()) {
    ReplyPtr reply(
        redisCommand(context, "AUTH %b", options_.password.data(), options_.password.size()));
    if (reply.reply == nullptr || reply.reply->type == REDIS_REPLY_ERROR) {
      // The reply names no secret; Redis says WRONGPASS or that no password is set.
      failed(context, std::string("AUTH failed: ") +
                          (reply.reply != nullptr ? reply.reply->str : context->errstr));
      return nullptr;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (down_) {
    down_ = false;
    log::info("redis cache reachable again",
              {{"address", options_.host + ":" + std::to_string(options_.port)}});
  }
  return context;
}

void RedisStore::release(redisContext* context) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < kMaxIdleConnections) {
    idle_.push_back(context);
    return;
  }
  redisFree(context);
}

void RedisStore::failed(redisContext* context, const std::string& what) {
  if (context != nullptr) redisFree(context);
  ++failures_;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  skipUntil_ = now + options_.retryAfter;
  down_ = true;
  // Idle connections to a Redis that just failed are likely dead too.
  for (redisContext* idle : idle_) redisFree(idle);
  idle_.clear();
  if (lastWarning_ == Clock::time_point{} || now - lastWarning_ >= kWarningInterval) {
    lastWarning_ = now;
    log::warn("redis cache unusable; using the local cache only",
              {{"address", options_.host + ":" + std::to_string(options_.port)},
               {"error", what},
               {"retryInMs", options_.retryAfter.count()}});
  }
}

std::optional<std::string> RedisStore::load(EntryKind kind, const std::string& key) {
  redisContext* context = acquire();
  if (context == nullptr) {
    ++misses_;
    return std::nullopt;
  }
  const std::string name = redisKey(kind, key);
  ReplyPtr reply(redisCommand(context, "GET %b", name.data(), name.size()));
  if (reply.reply == nullptr || reply.reply->type == REDIS_REPLY_ERROR) {
    failed(context, "GET failed: " +
                        std::string(reply.reply != nullptr ? reply.reply->str : context->errstr));
    ++misses_;
    return std::nullopt;
  }
  release(context);
  if (reply.reply->type != REDIS_REPLY_STRING) {
    ++misses_;
    return std::nullopt;
  }
  try {
    std::string payload =
        unwrapEntry(std::string_view(reply.reply->str, reply.reply->len), kind, key);
    ++hits_;
    return payload;
  } catch (const Error& e) {
    log::warn("ignoring a redis cache value that cannot be trusted",
              {{"key", name}, {"reason", e.what()}});
    ++misses_;
    return std::nullopt;
  }
}

void RedisStore::save(EntryKind kind, const std::string& key, std::string_view payload) {
  const std::string envelope = wrapEntry(kind, key, payload);
  if (envelope.size() > options_.maxValueBytes) return;
  redisContext* context = acquire();
  if (context == nullptr) return;
  const std::string name = redisKey(kind, key);
  void* raw =
      options_.ttl.count() > 0
          ? redisCommand(context, "SET %b %b EX %lld", name.data(), name.size(), envelope.data(),
                         envelope.size(), static_cast<long long>(options_.ttl.count()))
          : redisCommand(context, "SET %b %b", name.data(), name.size(), envelope.data(),
                         envelope.size());
  ReplyPtr reply(raw);
  if (reply.reply == nullptr || reply.reply->type == REDIS_REPLY_ERROR) {
    failed(context, "SET failed: " +
                        std::string(reply.reply != nullptr ? reply.reply->str : context->errstr));
    return;
  }
  release(context);
}

CacheStats RedisStore::stats() const {
  CacheStats stats;
  stats.hits = hits_.load();
  stats.misses = misses_.load();
  return stats;
}

}  // namespace imagegate::cache
