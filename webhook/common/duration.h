#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace imagegate {

/// Parses a Go duration as the Kubernetes API server writes it in `?timeout=` ("10s", "1m30s",
/// "500ms", "1.5s"). Returns nullopt for anything else, including negative durations.
std::optional<std::chrono::milliseconds> parseGoDuration(std::string_view text);

}  // namespace imagegate
