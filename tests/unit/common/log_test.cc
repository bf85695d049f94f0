#include "common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace imagegate {
namespace {

using ::testing::StartsWith;

/// What one call writes to stderr.
template <class Write>
std::string captured(Write write) {
  testing::internal::CaptureStderr();
  write();
  return testing::internal::GetCapturedStderr();
}

TEST(Log, EnabledFollowsTheLevel) {
  log::setLevel(log::Level::kWarn);
  EXPECT_FALSE(log::enabled(log::Level::kDebug));
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kWarn));
  EXPECT_TRUE(log::enabled(log::Level::kError));
  log::setLevel(log::Level::kInfo);
}

TEST(Log, ALineIsOneJsonObjectWithItsFieldsInOrder) {
  const std::string text = captured([] {
    log::Line(log::Level::kInfo, "admission review")
        .add("uid", std::string("705ab4f5"))
        .add("kind", "Pod")
        .add("dryRun", false)
        .add("count", 3)
        .add("bytes", std::numeric_limits<std::uint64_t>::max())
        .add("offset", std::int64_t{-7})
        .add("durationMs", 0.058)
        .add("findings", nlohmann::json::array({{{"rule", "nonRoot"}}}))
        .write();
  });
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_THAT(text, StartsWith(R"({"ts":")"));
  const auto line = nlohmann::json::parse(text);
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["msg"], "admission review");
  EXPECT_EQ(line["uid"], "705ab4f5");
  EXPECT_EQ(line["kind"], "Pod");
  EXPECT_EQ(line["dryRun"], false);
  EXPECT_EQ(line["count"], 3);
  EXPECT_EQ(line["bytes"], std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(line["offset"], -7);
  EXPECT_DOUBLE_EQ(line["durationMs"].get<double>(), 0.058);
  EXPECT_EQ(line["findings"][0]["rule"], "nonRoot");
  EXPECT_LT(text.find("\"uid\""), text.find("\"kind\""));
  EXPECT_LT(text.find("\"kind\""), text.find("\"findings\""));
}

TEST(Log, HostileStringsAreEscapedAndBadUtf8IsReplaced) {
  const std::string hostile = std::string("a\"b\\c\nd\x01") + "\xff\xfe" + "\xc3\xa9";
  const std::string text = captured([&] {
    log::Line(log::Level::kWarn, "name: \"quoted\"").add("name", hostile).add(hostile, 1).write();
  });
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "a newline in a value must not split the line";
  const auto line = nlohmann::json::parse(text);
  EXPECT_EQ(line["msg"], "name: \"quoted\"");
  EXPECT_EQ(line["name"], "a\"b\\c\nd\x01\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
  EXPECT_EQ(line.size(), 5u);
}

TEST(Log, NumbersJsonCannotHoldBecomeNull) {
  const std::string text = captured([] {
    log::Line(log::Level::kError, "x").add("nan", std::numeric_limits<double>::quiet_NaN()).write();
  });
  EXPECT_TRUE(nlohmann::json::parse(text)["nan"].is_null());
}

TEST(Log, ALineBelowTheLevelWritesNothing) {
  log::setLevel(log::Level::kWarn);
  const std::string text = captured([] {
    log::Line(log::Level::kInfo, "admission review").add("uid", "1").write();
    log::info("reloaded", {{"revision", 2}});
  });
  log::setLevel(log::Level::kInfo);
  EXPECT_EQ(text, "");
}

TEST(Log, WriteTakesItsFieldsFromAJsonObject) {
  const std::string text = captured([] {
    log::warn("certificate reloaded", {{"notAfter", "2027"}, {"ok", true}});
  });
  const auto line = nlohmann::json::parse(text);
  EXPECT_EQ(line["level"], "warn");
  EXPECT_EQ(line["msg"], "certificate reloaded");
  EXPECT_EQ(line["notAfter"], "2027");
  EXPECT_EQ(line["ok"], true);
}

/// The lines of `text` that are JSON objects, by their msg.
std::vector<std::string> messagesOf(const std::string& text) {
  std::vector<std::string> messages;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    messages.push_back(nlohmann::json::parse(text.substr(start, end - start))["msg"]);
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return messages;
}

TEST(Log, ADeferredLineIsWrittenOnceWhenItsLastOwnerIsDone) {
  const std::string text = captured([] {
    log::DeferredLine first(log::Line(log::Level::kInfo, "first"));
    log::DeferredLine moved(std::move(first));
    log::Line(log::Level::kInfo, "before").write();
    { log::DeferredLine scoped(log::Line(log::Level::kInfo, "scoped")); }
    moved.write();
    moved.write();  // nothing left to write
    log::DeferredLine replaced(log::Line(log::Level::kInfo, "replaced"));
    replaced = log::DeferredLine(log::Line(log::Level::kInfo, "last"));
  });
  EXPECT_EQ(messagesOf(text),
            (std::vector<std::string>{"before", "scoped", "first", "replaced", "last"}));
}

TEST(Log, AnEmptyDeferredLineWritesNothing) {
  EXPECT_EQ(captured([] { log::DeferredLine nothing; }), "");
  log::setLevel(log::Level::kWarn);
  EXPECT_EQ(captured([] { log::DeferredLine off(log::Line(log::Level::kInfo, "off")); }), "");
  log::setLevel(log::Level::kInfo);
}

}  // namespace
}  // namespace imagegate
