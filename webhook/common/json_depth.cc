#include "common/json_depth.h"

namespace imagegate {

JsonShape checkJsonShape(std::string_view json, std::size_t maxDepth, std::size_t maxValues) {
  std::size_t depth = 0;
  std::size_t separators = 0;  // openings and commas: one per value after the first
  bool inString = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
      }
    } else if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > maxDepth) return JsonShape::kTooDeep;
      if (++separators >= maxValues) return JsonShape::kTooManyValues;
    } else if (c == ',') {
      if (++separators >= maxValues) return JsonShape::kTooManyValues;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return JsonShape::kWithinLimits;
}

}  // namespace imagegate
