#include "common/json_text.h"

#include <charconv>
#include <cmath>

namespace imagegate::json_text {
namespace {

/// Printable ASCII other than '"' and '\' stands for itself in a JSON string.
bool needsEscaping(std::string_view text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\') return true;
  }
  return false;
}

template <class Number>
void appendChars(std::string& out, Number value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

}  // namespace

void appendString(std::string& out, std::string_view text) {
  if (needsEscaping(text)) {
    appendValue(out, nlohmann::json(text));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

void appendValue(std::string& out, const nlohmann::json& value) {
  out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void appendNumber(std::string& out, std::int64_t value) { appendChars(out, value); }

void appendNumber(std::string& out, std::uint64_t value) { appendChars(out, value); }

void appendNumber(std::string& out, double value) {
  if (std::isfinite(value)) {
    appendChars(out, value);
  } else {
    out += "null";
  }
}

}  // namespace imagegate::json_text
