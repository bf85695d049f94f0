#pragma once

#include <string>
#include <string_view>

// ASCII text helpers shared by the parsers. Protocol tokens (header names, auth schemes, host
// names) are ASCII and compared without case; locale-dependent folding would be wrong for them.
namespace imagegate {

/// `text` with A-Z folded to a-z; other bytes unchanged.
std::string asciiLower(std::string_view text);

/// a-z or 0-9: the alphabet of image-reference components and Kubernetes names.
constexpr bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace imagegate
