#include "common/quantity.h"

#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

namespace imagegate {
namespace {

std::optional<double> suffixMultiplier(std::string_view suffix) {
  static constexpr std::array<std::pair<std::string_view, double>, 13> kSuffixes{{
      {"", 1.0},
      {"Ki", 1024.0},
      {"Mi", 1048576.0},
      {"Gi", 1073741824.0},
      {"Ti", 1099511627776.0},
      {"Pi", 1125899906842624.0},
      {"Ei", 1152921504606846976.0},
      {"k", 1e3},
      {"M", 1e6},
      {"G", 1e9},
      {"T", 1e12},
      {"P", 1e15},
      {"E", 1e18},
  }};
  for (const auto& [name, multiplier] : kSuffixes) {
    if (name == suffix) return multiplier;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> parseByteQuantity(std::string_view text) {
  std::size_t numberEnd = 0;
  while (numberEnd < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[numberEnd])) || text[numberEnd] == '.')) {
    ++numberEnd;
  }
  if (numberEnd == 0 || numberEnd > 32) return std::nullopt;
  const std::string number(text.substr(0, numberEnd));
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  const auto multiplier = suffixMultiplier(text.substr(numberEnd));
  if (!multiplier) return std::nullopt;
  const double bytes = std::ceil(value * *multiplier);
  if (!std::isfinite(bytes) || bytes >= 9.2e18) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace imagegate
