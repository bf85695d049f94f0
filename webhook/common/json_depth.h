#pragma once

#include <cstddef>
#include <limits>
#include <string_view>

// Linear scans that run before nlohmann builds a DOM, so a hostile body costs a pass over its
// bytes, not a huge tree: `[[[[...` (depth) and `[{},{},...` (a 3 MB body of empty objects grows
// a DOM of ~100 MB). Brackets and commas inside strings do not count.
namespace imagegate {

enum class JsonShape {
  kWithinLimits,
  kTooDeep,        ///< Objects and arrays nest deeper than allowed.
  kTooManyValues,  ///< More values (objects, arrays, strings, numbers, literals) than allowed.
};

/// The first limit `json` exceeds, if any. Values are bounded from above by one plus the text's
/// object and array openings and commas (exact when no container is empty; an empty one counts
/// twice), which needs no parsing.
JsonShape checkJsonShape(std::string_view json, std::size_t maxDepth,
                         std::size_t maxValues = std::numeric_limits<std::size_t>::max());

/// True when `json` nests objects/arrays deeper than `maxDepth`.
inline bool jsonNestingExceeds(std::string_view json, std::size_t maxDepth) {
  return checkJsonShape(json, maxDepth) == JsonShape::kTooDeep;
}

}  // namespace imagegate
