#pragma once

#include <string_view>

namespace imagegate::image {

/// Matches a glob written against an image reference (`registry.example.com/*`,
/// `ghcr.io/acme/*`, `*.example.com/*`, `docker.io`) against a normalized reference such as
/// `docker.io/library/nginx:1.27`. The part before the first `/` is matched against the registry
/// host alone, so `*` never reaches across the host boundary and `registry.example.com/*` never
/// matches `registry.example.com.evil.io/x`. A pattern with no `/` names registry hosts only;
/// the single pattern `*` matches every image.
bool imageGlobMatch(std::string_view pattern, std::string_view normalizedReference);

}  // namespace imagegate::image
