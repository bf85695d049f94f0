#include "admission/response.h"

#include <nlohmann/json.hpp>

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

std::string encodeResponse(const ReviewEnvelope& envelope, const std::string& uid,
                           const Verdict& verdict) {
  json response = {{"uid", uid}, {"allowed", verdict.allowed}};
  if (!verdict.allowed) {
    json status = {{"code", verdict.code}, {"message", verdict.message}};
    if (!verdict.reason.empty()) status["reason"] = verdict.reason;
    response["status"] = std::move(status);
  }
  if (!verdict.warnings.empty()) response["warnings"] = boundedWarnings(verdict.warnings);
  if (!verdict.auditAnnotations.empty()) response["auditAnnotations"] = verdict.auditAnnotations;
  const json review = {{"apiVersion", envelope.apiVersion},
                       {"kind", envelope.kind},
                       {"response", std::move(response)}};
  // Untrusted strings may hold invalid UTF-8; replace rather than throw while answering.
  return review.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace imagegate::admission
