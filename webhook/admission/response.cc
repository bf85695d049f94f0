#include "admission/response.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace imagegate::admission {
namespace {

using nlohmann::json;

/// Warnings are shown verbatim by kubectl: keep them on one line.
std::string singleLine(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

/// Cuts to at most `limit` bytes without splitting a UTF-8 sequence, marking the cut with "...".
std::string shorten(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t cut = limit - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

json boundedWarnings(const std::vector<std::string>& warnings) {
  // Room for the final "N more" note so it always fits inside the total.
  constexpr std::size_t kOmittedNoteRoom = 64;
  json out = json::array();
  std::size_t total = 0;
  for (std::size_t i = 0; i < warnings.size(); ++i) {
    std::string warning = shorten(singleLine(warnings[i]), kMaxWarningLength);
    if (total + warning.size() > kMaxWarningsTotal - kOmittedNoteRoom) {
      out.push_back("imagegate: " + std::to_string(warnings.size() - i) +
                    " more warnings omitted; see the imagegate logs");
      break;
    }
    total += warning.size();
    out.push_back(std::move(warning));
  }
  return out;
}

}  // namespace

// Written field by field rather than as a nlohmann tree, which cost ~40 allocations a review.
// The keys come in nlohmann's (sorted) order, as before; untrusted strings may hold invalid
// UTF-8, which is replaced rather than thrown on while answering.
std::string encodeResponse(const ReviewEnvelope& envelope, const std::string& uid,
                           const Verdict& verdict) {
  std::string out;
  out.reserve(128 + uid.size() + verdict.message.size());
  out += R"({"apiVersion":)";
  json_text::appendString(out, envelope.apiVersion);
  out += R"(,"kind":)";
  json_text::appendString(out, envelope.kind);
  out += R"(,"response":{"allowed":)";
  out += verdict.allowed ? "true" : "false";
  if (!verdict.auditAnnotations.empty()) {
    out += R"(,"auditAnnotations":)";
    json_text::appendValue(out, json(verdict.auditAnnotations));
  }
  if (!verdict.allowed) {
    out += R"(,"status":{"code":)";
    json_text::appendNumber(out, static_cast<std::int64_t>(verdict.code));
    out += R"(,"message":)";
    json_text::appendString(out, verdict.message);
    if (!verdict.reason.empty()) {
      out += R"(,"reason":)";
      json_text::appendString(out, verdict.reason);
    }
    out += '}';
  }
  out += R"(,"uid":)";
  json_text::appendString(out, uid);
  if (!verdict.warnings.empty()) {
    out += R"(,"warnings":)";
    json_text::appendValue(out, boundedWarnings(verdict.warnings));
  }
  out += "}}";
  return out;
}

}  // namespace imagegate::admission
