#include "admission/skippable_input.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace imagegate::admission {
namespace {

constexpr std::size_t kNoLimit = 1'000'000;

TEST(ScanJsonValue, FindsTheEndOfAValueItValidates) {
  struct Case {
    std::string text;
    std::size_t length;
    std::size_t values;
  };
  const std::vector<Case> cases = {
      {"null,", 4, 1},
      {"true}", 4, 1},
      {"false]", 5, 1},
      {"-0.5 ", 4, 1},
      {"120,", 3, 1},
      {R"("a\"b\\c\/\b\f\n\r\t\u00e9" ,)", 27, 1},
      {"{}", 2, 1},
      {"[ ]", 3, 1},
      {R"({ "a" : [ 1 , { "b" : null } ] , "c" : "d" } , "next")", 44, 6},
      {"[[[]]]]", 6, 3},
  };
  for (const Case& c : cases) {
    const auto scanned = scanJsonValue(c.text, kNoLimit, kNoLimit);
    ASSERT_TRUE(scanned) << c.text;
    EXPECT_EQ(scanned->length, c.length) << c.text;
    EXPECT_EQ(scanned->values, c.values) << c.text;
    EXPECT_EQ(scanned->isString, c.text.front() == '"') << c.text;
  }
}

TEST(ScanJsonValue, LeavesToNlohmannWhatItDoesNotValidateItself) {
  const std::vector<std::string> texts = {
      "",
      "nul",
      "True",
      "-",
      "1.",
      ".5",
      "+1",
      "1e5",
      "1E-5",
      "NaN",
      "[1,]",
      "[1 2]",
      "{\"a\" 1}",
      "{\"a\":1,}",
      "{1:2}",
      "[",
      "{\"a\":",
      "\"open",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\ud800\"",
      "\"\\udfff\"",
      "\"\x01\"",
      "\"\t\"",
      "\"caf\xc3\xa9\"",
      "\"\xff\"",
      "'single'",
      "/*c*/1",
      std::string(40, '9'),
  };
  for (const std::string& text : texts)
    EXPECT_FALSE(scanJsonValue(text, kNoLimit, kNoLimit)) << text;
}

TEST(ScanJsonValue, EndsAtTheValueAndLeavesWhatFollowsToNlohmann) {
  // A whole value followed by something that cannot follow it: the scan ends at the value, and
  // nlohmann refuses the rest.
  for (const auto& [text, length] : std::vector<std::pair<std::string, std::size_t>>{
           {"[1]]", 3}, {"01", 1}, {"0x10", 1}, {"truex", 4}, {"\"a\"\"b\"", 3}}) {
    const auto scanned = scanJsonValue(text, kNoLimit, kNoLimit);
    ASSERT_TRUE(scanned) << text;
    EXPECT_EQ(scanned->length, length) << text;
  }
}

TEST(ScanJsonValue, KeepsWithinTheDepthAndValueBudgets) {
  EXPECT_TRUE(scanJsonValue("[[[1]]]", 3, kNoLimit));
  EXPECT_FALSE(scanJsonValue("[[[1]]]", 2, kNoLimit));
  EXPECT_TRUE(scanJsonValue("1", 0, 1));
  EXPECT_FALSE(scanJsonValue("[]", 0, 1));
  EXPECT_TRUE(scanJsonValue("[1,2,3]", 1, 4));
  EXPECT_FALSE(scanJsonValue("[1,2,3]", 1, 3));
  EXPECT_FALSE(scanJsonValue("1", kNoLimit, 0));
}

/// Records what the parser reports, asks for the value of every key named "skip" to be jumped
/// over, and for the string of every key named "take" to be captured (a captured string is
/// recorded as 'taken "text"' at the null the parser reads in its place).
class Recorder : public nlohmann::json_sax<nlohmann::json> {
 public:
  Recorder(SkippableInput& input, bool onlyStrings) : input_(input), onlyStrings_(onlyStrings) {}

  bool null() override {
    if (const auto taken = input_.takeCapturedString()) {
      return add("taken \"" + std::string(*taken) + '"');
    }
    return add("null");
  }
  bool boolean(bool value) override { return add(value ? "true" : "false"); }
  bool number_integer(number_integer_t value) override { return add(std::to_string(value)); }
  bool number_unsigned(number_unsigned_t value) override { return add(std::to_string(value)); }
  bool number_float(number_float_t, const string_t& text) override { return add(text); }
  bool string(string_t& value) override { return add('"' + value + '"'); }
  bool binary(binary_t&) override { return add("binary"); }
  bool start_object(std::size_t) override { return add("{"); }
  bool key(string_t& name) override {
    if (name == "skip") input_.skipNextValue(SkipBudget{64, 1000, &skippedValues}, onlyStrings_);
    if (name == "take") input_.captureNextString();
    return add(name + ":");
  }
  bool end_object() override { return add("}"); }
  bool start_array(std::size_t) override { return add("["); }
  bool end_array() override { return add("]"); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    add("error");
    return false;
  }

  std::string events;
  std::size_t skippedValues = 0;

 private:
  bool add(const std::string& event) {
    events += event + " ";
    return true;
  }

  SkippableInput& input_;
  bool onlyStrings_;
};

std::string eventsOf(const std::string& text, bool onlyStrings = false,
                     std::size_t* skippedValues = nullptr) {
  SkippableInput input(text);
  Recorder recorder(input, onlyStrings);
  nlohmann::json::sax_parse(input.begin(), SkippableInput::end(), &recorder);
  if (skippedValues) *skippedValues = recorder.skippedValues;
  return recorder.events;
}

TEST(SkippableInput, TheParserReadsNullWhereAValueWasSkipped) {
  std::size_t skipped = 0;
  EXPECT_EQ(eventsOf(R"({"a": 1, "skip" : {"b": [1, 2, "x"]} , "c": "d"})", false, &skipped),
            R"({ a: 1 skip: null c: "d" } )");
  EXPECT_EQ(skipped, 4u) << "the object, the array's three values, less the null read instead";
  EXPECT_EQ(eventsOf(R"([{"skip":"x"},{"skip":2}])", true), R"([ { skip: "" } { skip: 2 } ] )");
}

TEST(SkippableInput, WhatTheScanCannotValidateIsReadByTheParser) {
  EXPECT_EQ(eventsOf(R"({"skip": 1e2, "a": true})"), R"({ skip: 1e2 a: true } )");
  EXPECT_EQ(eventsOf(R"({"skip": [1,], "a": true})"), "{ skip: [ 1 error ");
  EXPECT_EQ(eventsOf(R"({"skip" 1})"), "{ skip: error ");
  EXPECT_EQ(eventsOf(R"({"skip": "x")"), R"({ skip: null error )");
}

TEST(SkippableInput, APlainStringIsTakenAndTheParserReadsNullInItsPlace) {
  EXPECT_EQ(eventsOf(R"({"take" : "registry.example.com/app:1", "a": "b", "take":""})"),
            R"({ take: taken "registry.example.com/app:1" a: "b" take: taken "" } )");
  EXPECT_EQ(eventsOf("{\"take\":\n\t\"x\x7f~\"}"), "{ take: taken \"x\x7f~\" } ");
}

TEST(SkippableInput, AnyOtherValueOfATakenKeyIsReadByTheParser) {
  EXPECT_EQ(eventsOf(R"({"take": "a\"b", "c": 1})"), R"({ take: "a"b" c: 1 } )");
  EXPECT_EQ(eventsOf("{\"take\": \"caf\xc3\xa9\"}"), "{ take: \"caf\xc3\xa9\" } ");
  EXPECT_EQ(eventsOf("{\"take\": \"bad\xff\"}"), "{ take: error ");
  EXPECT_EQ(eventsOf("{\"take\": \"tab\there\"}"), "{ take: error ");
  EXPECT_EQ(eventsOf(R"({"take": null, "n": null})"), "{ take: null n: null } ");
  EXPECT_EQ(eventsOf(R"({"take": [1], "b": {"take": 2}})"), "{ take: [ 1 ] b: { take: 2 } } ");
  EXPECT_EQ(eventsOf(R"({"take": "unterminated)"), "{ take: error ");
  EXPECT_EQ(eventsOf(R"({"take" "x"})"), "{ take: error ");
}

TEST(SkippableInput, WithoutSkipsItReadsLikeTheTextItself) {
  const std::string text = R"({"a": [1, 2.5, "x", null, true], "b": {"c": {}}})";
  SkippableInput input(text);
  std::string read(input.begin(), SkippableInput::end());
  EXPECT_EQ(read, text);
}

}  // namespace
}  // namespace imagegate::admission
