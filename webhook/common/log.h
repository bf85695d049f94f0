#pragma once

#include <concepts>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

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

 private:
  /// Writes `key` and its separator; false when the line's level is off (nothing is written).
  bool startField(std::string_view key);
  Line& addInteger(std::string_view key, std::int64_t value);
  Line& addUnsigned(std::string_view key, std::uint64_t value);

  Level level_;
  std::string text_;
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
