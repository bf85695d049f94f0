#pragma once

#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace imagegate::log {

enum class Level { kDebug, kInfo, kWarn, kError };

/// Sets the lowest level that is written. Thread-safe.
void setLevel(Level level);

/// Whether `level` is written; lets hot paths skip building fields nobody will see.
bool enabled(Level level);

/// One JSON line `{"ts":..., "level":..., "msg":..., <fields>}` under construction. Fields are
/// serialized as they are added, in that order, so a hot path (one line per review) builds no
/// JSON tree. Callers must never add credentials. Invalid UTF-8 from untrusted input is
/// replaced, never thrown about.
class Line {
 public:
  Line(Level level, std::string_view message);

  Line& add(std::string_view key, std::string_view value);
  Line& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view(value));
  }
  Line& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  Line& add(std::string_view key, bool value);
  Line& add(std::string_view key, double value);
  template <std::integral Number>
  requires(!std::same_as<Number, bool>) Line& add(std::string_view key, Number value) {
    if constexpr (std::signed_integral<Number>) {
      return addInteger(key, static_cast<std::int64_t>(value));
    } else {
      return addUnsigned(key, static_cast<std::uint64_t>(value));
    }
  }
  Line& add(std::string_view key, const nlohmann::json& value);

  /// Writes the line to stderr, atomically with respect to other threads, if its level is on.
  void write();
  /// The finished line, its newline included, to be written later; empty if its level is off.
  std::string take() &&;

 private:
  /// Writes `key` and its separator; false when the line's level is off (nothing is written).
  bool startField(std::string_view key);
  Line& addInteger(std::string_view key, std::int64_t value);
  Line& addUnsigned(std::string_view key, std::uint64_t value);

  std::string text_;  ///< Empty when the line's level is off: nothing is added or written.
};

/// Writes a line that Line::take() finished, atomically with respect to other threads.
void writeFinished(std::string_view text);

/// A line written when it is destroyed, unless written before: for a line that must follow what
/// its owner does next (a review's answer leaves before the review's log line, so that a slow or
/// contended log never holds an answer back). Moving it moves the duty to write.
class DeferredLine {
 public:
  DeferredLine() = default;
  explicit DeferredLine(Line line) : text_(std::move(line).take()) {}
  DeferredLine(DeferredLine&& other) noexcept : text_(std::exchange(other.text_, {})) {}
  DeferredLine& operator=(DeferredLine&& other) noexcept {
    if (this != &other) {
      write();
      text_ = std::exchange(other.text_, {});
    }
    return *this;
  }
  DeferredLine(const DeferredLine&) = delete;
  DeferredLine& operator=(const DeferredLine&) = delete;
  ~DeferredLine() { write(); }

  void write() { writeFinished(std::exchange(text_, {})); }

 private:
  std::string text_;  ///< The finished line; empty once written, or when its level was off.
};

/// Writes one line with `fields` (a JSON object) after ts, level and msg.
void write(Level level, std::string_view message,
           const nlohmann::json& fields = nlohmann::json::object());

inline void debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kDebug, m, f);
}
inline void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kInfo, m, f);
}
inline void warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kWarn, m, f);
}
inline void error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) {
  write(Level::kError, m, f);
}

}  // namespace imagegate::log
