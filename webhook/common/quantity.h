#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace imagegate {

/// Parses a Kubernetes resource quantity as a byte count: "200Mi", "1.5Gi", "500M", "123".
/// Binary suffixes Ki Mi Gi Ti Pi Ei, decimal k M G T P E. Returns nullopt for anything else,
/// negative values, and values beyond 2^63 bytes.
std::optional<std::uint64_t> parseByteQuantity(std::string_view text);

}  // namespace imagegate
