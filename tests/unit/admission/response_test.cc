#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "admission/response.h"

namespace imagegate::admission {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(EncodeResponse, AllowedHasNoStatus) {
  const json out = json::parse(encodeResponse({}, "u-1", Verdict{}));
  EXPECT_EQ(out["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(out["kind"], "AdmissionReview");
  EXPECT_EQ(out["response"]["uid"], "u-1");
  EXPECT_EQ(out["response"]["allowed"], true);
  EXPECT_FALSE(out["response"].contains("status"));
  EXPECT_FALSE(out["response"].contains("warnings"));
}

TEST(EncodeResponse, DenialCarriesStatus) {
  Verdict verdict;
  verdict.allowed = false;
  verdict.code = 403;
  verdict.reason = "Forbidden";
  verdict.message = "no";
  verdict.auditAnnotations["p"] = "v";
  const json out = json::parse(encodeResponse({}, "u-2", verdict));
  EXPECT_EQ(out["response"]["allowed"], false);
  EXPECT_EQ(out["response"]["status"]["code"], 403);
  EXPECT_EQ(out["response"]["status"]["message"], "no");
  EXPECT_EQ(out["response"]["status"]["reason"], "Forbidden");
  EXPECT_EQ(out["response"]["auditAnnotations"]["p"], "v");
}

TEST(EncodeResponse, WarningsAreShortSingleLineAndBounded) {
  Verdict verdict;
  verdict.warnings.push_back(std::string(300, 'x'));
  verdict.warnings.push_back("line\nbreak");
  verdict.warnings.push_back(std::string(116, 'a') + "\xC3\xA9\xC3\xA9");  // UTF-8 at the cut
  for (int i = 0; i < 100; ++i) verdict.warnings.push_back(std::string(100, 'w'));
  const json out = json::parse(encodeResponse({}, "u", verdict));
  const json& warnings = out["response"]["warnings"];
  std::size_t total = 0;
  for (const auto& w : warnings) {
    const std::string s = w.get<std::string>();
    EXPECT_LT(s.size(), 120u);
    EXPECT_EQ(s.find('\n'), std::string::npos);
    total += s.size();
  }
  EXPECT_LE(total, kMaxWarningsTotal);
  EXPECT_EQ(warnings[1], "line break");
  EXPECT_THAT(warnings.back().get<std::string>(), HasSubstr("more warnings omitted"));
}

TEST(EncodeResponse, InvalidUtf8IsReplacedNotThrown) {
  Verdict verdict;
  verdict.allowed = false;
  verdict.message = "bad \xFF byte";
  EXPECT_NO_THROW(json::parse(encodeResponse({}, "u", verdict)));
}

/// The response as it was built before it was written field by field: a nlohmann tree, dumped.
/// Warnings are compared separately above; here they are plain and within every bound.
std::string encodedAsATree(const ReviewEnvelope& envelope, const std::string& uid,
                           const Verdict& verdict) {
  json response = {{"uid", uid}, {"allowed", verdict.allowed}};
  if (!verdict.allowed) {
    json status = {{"code", verdict.code}, {"message", verdict.message}};
    if (!verdict.reason.empty()) status["reason"] = verdict.reason;
    response["status"] = std::move(status);
  }
  if (!verdict.warnings.empty()) response["warnings"] = verdict.warnings;
  if (!verdict.auditAnnotations.empty()) response["auditAnnotations"] = verdict.auditAnnotations;
  const json review = {{"apiVersion", envelope.apiVersion},
                       {"kind", envelope.kind},
                       {"response", std::move(response)}};
  return review.dump(-1, ' ', false, json::error_handler_t::replace);
}

TEST(EncodeResponse, IsByteForByteWhatTheJsonTreeWrote) {
  const std::vector<std::string> texts = {"",
                                          "plain",
                                          "quote \" back\\slash",
                                          "tab\tnew\nline\x01",
                                          "caf\xC3\xA9 \xE2\x9C\x93",
                                          "\xFF bad",
                                          "\xC3 cut",
                                          "\x7F"
                                          " del",
                                          std::string(300, 'x'),
                                          std::string("nul\0in", 6)};
  std::size_t cases = 0;
  for (const std::string& text : texts) {
    for (const bool allowed : {true, false}) {
      ReviewEnvelope envelope;
      envelope.apiVersion = "admission.k8s.io/" + text;
      Verdict verdict;
      verdict.allowed = allowed;
      verdict.code = allowed ? 200 : 403;
      verdict.message = text;
      verdict.reason = allowed ? "" : text;
      if (text.size() % 2 == 0)
        verdict.auditAnnotations = {{"imagegate.dev/" + text, text}, {"a", "b"}};
      if (text == "plain") verdict.warnings = {"one", "two"};
      EXPECT_EQ(encodeResponse(envelope, text, verdict), encodedAsATree(envelope, text, verdict))
          << "text: " << json(text).dump(-1, ' ', true, json::error_handler_t::replace)
          << " allowed: " << allowed;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 2 * texts.size());
}

}  // namespace
}  // namespace imagegate::admission
