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

bool globMatchIgnoringCase(std::string_view pattern, std::string_view text) {
  return fnmatchView(pattern, text, FNM_CASEFOLD);
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

}  // namespace imagegate
