#include "common/duration.h"

#include <charconv>
#include <cmath>
#include <string>

namespace imagegate {
namespace {

std::optional<double> unitMilliseconds(std::string_view unit) {
  if (unit == "ns") return 1e-6;
  if (unit == "us" || unit == "\xC2\xB5s") return 1e-3;
  if (unit == "ms") return 1.0;
  if (unit == "s") return 1e3;
  if (unit == "m") return 60e3;
  if (unit == "h") return 3600e3;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parseGoDuration(std::string_view text) {
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  if (text == "0") {
    return std::chrono::milliseconds(0);
  }
  double totalMs = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t numberStart = pos;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) {
      ++pos;
    }
    if (pos == numberStart) {
      return std::nullopt;
    }
    double value = 0;
    const std::string number(text.substr(numberStart, pos - numberStart));
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) {
      return std::nullopt;
    }
    const std::size_t unitStart = pos;
    while (pos < text.size() && !std::isdigit(static_cast<unsigned char>(text[pos])) &&
           text[pos] != '.') {
      ++pos;
    }
    const auto unit = unitMilliseconds(text.substr(unitStart, pos - unitStart));
    if (!unit) {
      return std::nullopt;
    }
    totalMs += value * *unit;
  }
  if (!std::isfinite(totalMs) || totalMs > 24.0 * 3600e3) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(totalMs)));
}

}  // namespace imagegate
