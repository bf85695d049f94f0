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

}  // namespace
}  // namespace imagegate::admission
