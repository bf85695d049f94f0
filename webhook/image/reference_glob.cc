#include "image/reference_glob.h"

#include "common/glob.h"

namespace imagegate::image {

bool imageGlobMatch(std::string_view pattern, std::string_view normalizedReference) {
  if (pattern == "*") {
    return true;
  }
  const auto slash = normalizedReference.find('/');
  const std::string_view host = normalizedReference.substr(0, slash);
  const std::string_view rest =
      slash == std::string_view::npos ? std::string_view{} : normalizedReference.substr(slash + 1);

  // Host names are case-insensitive (DNS) and the runtime keeps the case as written, so
  // `K8S.GCR.IO/pause` pulls from k8s.gcr.io and must not slip past a `k8s.gcr.io/*` pattern.
  const auto hostMatches = [&](std::string_view hostPattern) {
    return globMatchIgnoringCase(hostPattern, host);
  };
  const auto patternSlash = pattern.find('/');
  if (patternSlash == std::string_view::npos) {
    return hostMatches(pattern);
  }
  return hostMatches(pattern.substr(0, patternSlash)) &&
         globMatch(pattern.substr(patternSlash + 1), rest);
}

}  // namespace imagegate::image
