#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace imagegate::log {

enum class Level { kDebug, kInfo, kWarn, kError };

/// Sets the lowest level that is written. Thread-safe.
void setLevel(Level level);

/// Whether `level` is written; lets hot paths skip building fields nobody will see.
bool enabled(Level level);

/// Writes one JSON line `{"ts":..., "level":..., "msg":..., <fields>}` to stderr, atomically with
/// respect to other threads. Callers must never put credentials in `fields`.
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
