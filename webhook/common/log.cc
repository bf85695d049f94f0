#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "common/json_text.h"

namespace imagegate::log {
namespace {

using json_text::appendNumber;
using json_text::appendString;
using json_text::appendValue;

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

void appendUtcTimestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  const int length = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  out.append(buffer, static_cast<std::size_t>(length));
}

}  // namespace

void setLevel(Level level) { gLevel.store(level); }

bool enabled(Level level) { return level >= gLevel.load(std::memory_order_relaxed); }

Line::Line(Level level, std::string_view message) {
  if (!enabled(level)) return;
  text_.reserve(256);
  text_ += R"({"ts":")";
  appendUtcTimestamp(text_);
  text_ += R"(","level":")";
  text_ += levelName(level);
  text_ += R"(","msg":)";
  appendString(text_, message);
}

bool Line::startField(std::string_view key) {
  if (text_.empty()) return false;
  text_ += ',';
  appendString(text_, key);
  text_ += ':';
  return true;
}

Line& Line::add(std::string_view key, std::string_view value) {
  if (startField(key)) appendString(text_, value);
  return *this;
}

Line& Line::add(std::string_view key, bool value) {
  if (startField(key)) text_ += value ? "true" : "false";
  return *this;
}

Line& Line::add(std::string_view key, double value) {
  if (startField(key)) appendNumber(text_, value);
  return *this;
}

Line& Line::addInteger(std::string_view key, std::int64_t value) {
  if (startField(key)) appendNumber(text_, value);
  return *this;
}

Line& Line::addUnsigned(std::string_view key, std::uint64_t value) {
  if (startField(key)) appendNumber(text_, value);
  return *this;
}

Line& Line::add(std::string_view key, const nlohmann::json& value) {
  if (startField(key)) appendValue(text_, value);
  return *this;
}

std::string Line::take() && {
  if (!text_.empty()) text_ += "}\n";
  std::string finished = std::move(text_);
  text_.clear();  // a moved-from string is only "valid": make sure nothing is written twice
  return finished;
}

void Line::write() { writeFinished(std::move(*this).take()); }

void writeFinished(std::string_view text) {
  if (text.empty()) return;
  std::lock_guard<std::mutex> lock(gWriteMutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

void write(Level level, std::string_view message, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  Line line(level, message);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) line.add(key, value);
  }
  line.write();
}

}  // namespace imagegate::log
