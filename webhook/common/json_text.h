#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

/// Appending JSON values to a text being written field by field, for the hot outputs (the
/// per-review log line, the AdmissionReview response) where building a nlohmann tree first costs
/// more than the rest of the answer. nlohmann still does every escape and UTF-8 repair.
namespace imagegate::json_text {

/// `text` as a JSON string: plain printable ASCII is copied as it is; anything else goes through
/// nlohmann, invalid UTF-8 replaced by U+FFFD rather than thrown on.
void appendString(std::string& out, std::string_view text);

/// `value` as compact JSON, invalid UTF-8 replaced as above.
void appendValue(std::string& out, const nlohmann::json& value);

void appendNumber(std::string& out, std::int64_t value);
void appendNumber(std::string& out, std::uint64_t value);
/// NaN and infinities as null, as nlohmann writes them: JSON has neither.
void appendNumber(std::string& out, double value);

}  // namespace imagegate::json_text
