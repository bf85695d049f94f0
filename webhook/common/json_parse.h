#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace imagegate {

/// Why text is not usable JSON.
struct JsonProblem {
  /// The parser's reason without nlohmann's "[json.exception.parse_error.101] " prefix. It may
  /// quote the text near the error, so it must not be shown for input that can hold secrets.
  std::string reason;
  std::size_t byte = 0;  ///< Where parsing stopped (1-based); 0 when not known.
};

/// Parses `text`. nlohmann reports syntax errors as parse_error and numbers too large to
/// represent (1e400) as out_of_range; both mean the text is not usable JSON, and both come back
/// here as nullopt with `problem` set, never as an exception.
std::optional<nlohmann::json> tryParseJson(std::string_view text, JsonProblem& problem);

}  // namespace imagegate
