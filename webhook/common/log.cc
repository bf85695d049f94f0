#include "common/log.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
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

/// Printable ASCII other than '"' and '\' stands for itself in a JSON string.
bool needsEscaping(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\') return true;
  }
  return false;
}

void appendJson(std::string& out, const nlohmann::json& value) {
  out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Names, uids and messages are nearly always plain ASCII: copy those, and let nlohmann escape
/// (and repair the UTF-8 of) the rest.
void appendString(std::string& out, std::string_view text) {
  if (needsEscaping(text)) {
    appendJson(out, nlohmann::json(text));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

template <class Number>
void appendNumber(std::string& out, Number value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

}  // namespace

void setLevel(Level level) { gLevel.store(level); }

bool enabled(Level level) { return level >= gLevel.load(std::memory_order_relaxed); }

Line::Line(Level level, std::string_view message) : level_(level) {
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
  if (!startField(key)) return *this;
  if (std::isfinite(value)) {
    appendNumber(text_, value);
  } else {
    text_ += "null";  // as nlohmann writes them: JSON has no NaN or infinity
  }
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
  if (startField(key)) appendJson(text_, value);
  return *this;
}

void Line::write() {
  if (text_.empty()) return;
  text_ += "}\n";
  std::lock_guard<std::mutex> lock(gWriteMutex);
  std::fwrite(text_.data(), 1, text_.size(), stderr);
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
