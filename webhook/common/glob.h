#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace imagegate {

/// Shell-style glob (`*`, `?`, `[...]`) over a whole string; `*` also matches `/`.
/// Backed by fnmatch(3).
bool globMatch(std::string_view pattern, std::string_view text);

/// Why `pattern` is not a usable glob (empty, whitespace, unbalanced brackets), or nullopt.
std::optional<std::string> globProblem(std::string_view pattern);

/// Matches a glob written against an image reference (`registry.example.com/*`,
/// `ghcr.io/acme/*`, `*.example.com/*`, `docker.io`) against a normalized reference such as
/// `docker.io/library/nginx:1.27`. The part before the first `/` is matched against the registry
/// host alone, so `*` never reaches across the host boundary and `registry.example.com/*` never
/// matches `registry.example.com.evil.io/x`. A pattern with no `/` names registry hosts only;
/// the single pattern `*` matches every image.
bool imageGlobMatch(std::string_view pattern, std::string_view normalizedReference);

}  // namespace imagegate
