#pragma once

#include <cstddef>
#include <string_view>

namespace imagegate {

/// True when `json` nests objects/arrays deeper than `maxDepth`. A linear scan that runs before
/// nlohmann builds a DOM, so a hostile `[[[[...` costs a pass over the bytes, not a huge tree.
/// Brackets inside strings do not count.
bool jsonNestingExceeds(std::string_view json, std::size_t maxDepth);

}  // namespace imagegate
