#include "common/glob.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace imagegate {

namespace {

bool fnmatchView(std::string_view pattern, std::string_view text, int flags) {
  // fnmatch needs NUL-terminated strings; patterns and references are short.
  const std::string p(pattern);
  const std::string t(text);
  return fnmatch(p.c_str(), t.c_str(), flags) == 0;
}

}  // namespace

bool globMatch(std::string_view pattern, std::string_view text) {
  return fnmatchView(pattern, text, 0);
}

std::optional<std::string> globProblem(std::string_view pattern) {
  if (pattern.empty()) {
    return "an empty pattern matches nothing; remove it or write \"*\"";
  }
  if (std::any_of(pattern.begin(), pattern.end(),
                  [](unsigned char c) { return std::isspace(c) || std::iscntrl(c); })) {
    return "a pattern must not contain whitespace or control characters";
  }
  bool inBracket = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 == pattern.size()) {
        return "a pattern must not end with a lone backslash";
      }
      ++i;
    } else if (c == '[' && !inBracket) {
      inBracket = true;
      // A ']' right after '[' or '[!' is a literal member, as in fnmatch.
      if (i + 1 < pattern.size() && (pattern[i + 1] == '!' || pattern[i + 1] == '^')) ++i;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;
    } else if (c == ']' && inBracket) {
      inBracket = false;
    }
  }
  if (inBracket) {
    return "unbalanced '[' in pattern";
  }
  return std::nullopt;
}

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
    return fnmatchView(hostPattern, host, FNM_CASEFOLD);
  };
  const auto patternSlash = pattern.find('/');
  if (patternSlash == std::string_view::npos) {
    return hostMatches(pattern);
  }
  return hostMatches(pattern.substr(0, patternSlash)) &&
         globMatch(pattern.substr(patternSlash + 1), rest);
}

}  // namespace imagegate
