#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace imagegate {

/// Shell-style glob (`*`, `?`, `[...]`) over a whole string; `*` also matches `/`.
/// Backed by fnmatch(3).
bool globMatch(std::string_view pattern, std::string_view text);

/// globMatch ignoring ASCII case, for names that are case-insensitive such as DNS host names.
bool globMatchIgnoringCase(std::string_view pattern, std::string_view text);

/// Why `pattern` is not a usable glob (empty, whitespace, unbalanced brackets), or nullopt.
std::optional<std::string> globProblem(std::string_view pattern);

}  // namespace imagegate
