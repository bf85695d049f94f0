#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace imagegate::log {
namespace {

std::atomic<Level> gLevel{Level::kInfo};
std::mutex gWriteMutex;

const char* levelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string utcTimestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buffer;
}

}  // namespace

void setLevel(Level level) { gLevel.store(level); }

bool enabled(Level level) { return level >= gLevel.load(std::memory_order_relaxed); }

void write(Level level, std::string_view message, const nlohmann::json& fields) {
  if (level < gLevel.load(std::memory_order_relaxed)) {
    return;
  }
  nlohmann::json line = {{"ts", utcTimestamp()}, {"level", levelName(level)}, {"msg", message}};
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      line[key] = value;
    }
  }
  // Replace invalid UTF-8 from untrusted input instead of throwing while logging.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(gWriteMutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace imagegate::log
