// RedisStore against a real /usr/bin/redis-server on a free loopback port.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis.h>

#include <chrono>
#include <filesystem>

#include "cache/redis_store.h"
#include "common/error.h"
#include "testutil/redis_server.h"

namespace imagegate::cache {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

const std::string kLayer = "sha256:" + std::string(64, 'a');

fs::path testDir() {
  return fs::path(::testing::TempDir()) /
         ("imagegate-redis-" +
          std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
}

/// Removes the test's directory (redis-server's log and working directory) when the test ends.
struct RemoveTestDir {
  ~RemoveTestDir() {
    std::error_code ignored;
    fs::remove_all(testDir(), ignored);
  }
};

RedisStoreOptions optionsFor(const testutil::RedisServer& redis) {
  RedisStoreOptions options;
  parseRedisAddress(redis.address(), options);
  options.connectTimeout = milliseconds(200);
  options.commandTimeout = milliseconds(200);
  options.retryAfter = milliseconds(300);
  return options;
}

/// Writes `value` under `key` directly, as another program with access to Redis could.
void rawSet(const testutil::RedisServer& redis, const std::string& key, const std::string& value) {
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  auto* reply = static_cast<redisReply*>(
      redisCommand(c, "SET %b %b", key.data(), key.size(), value.data(), value.size()));
  ASSERT_NE(reply, nullptr);
  freeReplyObject(reply);
  redisFree(c);
}

TEST(RedisStore, SharesEntriesBetweenStoresUnderVersionedPrefixedKeys) {
  const RemoveTestDir cleanup;
  testutil::RedisServer redis(testDir());
  RedisStore first(optionsFor(redis));
  RedisStore second(optionsFor(redis));
  EXPECT_EQ(second.load(EntryKind::kLayerIndex, kLayer), std::nullopt);
  first.save(EntryKind::kLayerIndex, kLayer, "index bytes");
  EXPECT_EQ(second.load(EntryKind::kLayerIndex, kLayer), "index bytes");
  EXPECT_EQ(second.load(EntryKind::kImageFacts, kLayer), std::nullopt);
  EXPECT_EQ(second.redisKey(EntryKind::kLayerIndex, kLayer), "imagegate:v1:layer:" + kLayer);
  EXPECT_EQ(second.stats().hits, 1u);
  EXPECT_EQ(second.stats().misses, 2u);
  EXPECT_EQ(second.failures(), 0u);
}

TEST(RedisStore, ValuesThatFailVerificationAreIgnoredWithAWarning) {
  const RemoveTestDir cleanup;
  testutil::RedisServer redis(testDir());
  RedisStore store(optionsFor(redis));
  const std::string other = "sha256:" + std::string(64, 'b');
  // Another key's valid entry copied under this key, and bytes that are no entry at all.
  rawSet(redis, store.redisKey(EntryKind::kLayerIndex, kLayer),
         wrapEntry(EntryKind::kLayerIndex, other, "another layer's index"));
  rawSet(redis, store.redisKey(EntryKind::kLayerIndex, other), "garbage");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(store.load(EntryKind::kLayerIndex, kLayer), std::nullopt);
  EXPECT_EQ(store.load(EntryKind::kLayerIndex, other), std::nullopt);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("another key"));
  EXPECT_THAT(log, HasSubstr("not an imagegate cache entry"));
}

TEST(RedisStore, PasswordIsSentAndAWrongOneDegradesToMisses) {
  const RemoveTestDir cleanup;
  testutil::RedisServer redis(testDir(), "s3cret-redis-password");
  RedisStoreOptions options = optionsFor(redis);
  options.password = "s3cret-redis-password";
  RedisStore store(options);
  store.save(EntryKind::kLayerIndex, kLayer, "index bytes");
  EXPECT_EQ(store.load(EntryKind::kLayerIndex, kLayer), "index bytes");

  options.password = "wrong-password";
  RedisStore wrong(options);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(wrong.load(EntryKind::kLayerIndex, kLayer), std::nullopt);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("redis cache unusable"));
  EXPECT_THAT(log, Not(HasSubstr("wrong-password")));
  EXPECT_GE(wrong.failures(), 1u);
}

TEST(RedisStore, LostRedisDegradesToMissesWithOneWarningAndReconnectsLater) {
  const RemoveTestDir cleanup;
  testutil::RedisServer redis(testDir());
  RedisStore store(optionsFor(redis));
  store.save(EntryKind::kLayerIndex, kLayer, "index bytes");
  redis.kill();
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(store.load(EntryKind::kLayerIndex, kLayer), std::nullopt);
    store.save(EntryKind::kLayerIndex, kLayer, "index bytes");
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  // Rate-limited: 40 calls, one warning; and Redis was skipped rather than asked 40 times.
  std::size_t warnings = 0;
  for (std::size_t at = log.find("redis cache unusable"); at != std::string::npos;
       at = log.find("redis cache unusable", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u);
  EXPECT_LT(store.failures(), 5u);

  // A new Redis on another port is not this one; the same store reconnects to its own address
  // once retryAfter has passed, which a restarted Redis on the same port would answer.
  testutil::RedisServer fresh(testDir() / "fresh");
  RedisStoreOptions options = optionsFor(fresh);
  RedisStore reconnecting(options);
  fresh.pause();
  EXPECT_EQ(reconnecting.load(EntryKind::kLayerIndex, kLayer), std::nullopt);  // times out
  EXPECT_EQ(reconnecting.failures(), 1u);
  fresh.resume();
  std::this_thread::sleep_for(options.retryAfter + milliseconds(100));
  reconnecting.save(EntryKind::kLayerIndex, kLayer, "index bytes");
  EXPECT_EQ(reconnecting.load(EntryKind::kLayerIndex, kLayer), "index bytes");
  EXPECT_EQ(reconnecting.failures(), 1u);
}

TEST(RedisStore, AddressesParseOrSayWhatIsWrong) {
  RedisStoreOptions options;
  parseRedisAddress("redis.cache.svc:6380", options);
  EXPECT_EQ(options.host, "redis.cache.svc");
  EXPECT_EQ(options.port, 6380);
  parseRedisAddress("redis", options);
  EXPECT_EQ(options.port, 6379);
  parseRedisAddress("[::1]:7000", options);
  EXPECT_EQ(options.host, "::1");
  EXPECT_EQ(options.port, 7000);
  for (const char* bad : {"", ":6379", "redis:0", "redis:70000", "redis:port", "[::1"}) {
    EXPECT_THROW(parseRedisAddress(bad, options), Error) << bad;
  }
}

}  // namespace
}  // namespace imagegate::cache
