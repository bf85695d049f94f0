#include "common/yaml_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"

namespace imagegate {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kCases =
    fs::path(IMAGEGATE_SOURCE_DIR) / "tests/data/yaml_json/core_schema_scalars.txt";

json valueOf(const std::string& yamlValue) {
  return yamlToJson(YAML::Load("v: " + yamlValue))["v"];
}

// Every case of tests/data/yaml_json/core_schema_scalars.txt, compared by JSON text so that 1
// and 1.0 (integer and float) differ.
TEST(YamlToJson, CoreSchemaScalarsOfTheFixtureFile) {
  std::ifstream file(kCases);
  ASSERT_TRUE(file) << kCases;
  std::string line;
  int cases = 0;
  while (std::getline(file, line)) {
    if (line.starts_with("#") || line.empty()) continue;
    const std::size_t arrow = line.find(" => ");
    ASSERT_NE(arrow, std::string::npos) << line;
    const std::string yamlValue = line.substr(0, arrow);
    const json expected = json::parse(line.substr(arrow + 4));
    EXPECT_EQ(valueOf(yamlValue).dump(), expected.dump()) << "YAML value: " << yamlValue;
    ++cases;
  }
  EXPECT_GT(cases, 50);
}

TEST(YamlToJson, InfinityAndNotANumberAreFloats) {
  for (const char* text : {".inf", ".Inf", ".INF", "+.inf"}) {
    const json value = valueOf(text);
    ASSERT_TRUE(value.is_number_float()) << text;
    EXPECT_TRUE(std::isinf(value.get<double>()) && value.get<double>() > 0) << text;
  }
  EXPECT_TRUE(std::isinf(valueOf("-.Inf").get<double>()));
  EXPECT_LT(valueOf("-.INF").get<double>(), 0);
  for (const char* text : {".nan", ".NaN", ".NAN"}) {
    EXPECT_TRUE(std::isnan(valueOf(text).get<double>())) << text;
  }
  EXPECT_EQ(valueOf(".Nan"), ".Nan");
  EXPECT_EQ(valueOf("'.inf'"), ".inf");
}

TEST(YamlToJson, BlockScalarsAreStrings) {
  const json value = yamlToJson(YAML::Load("a: |\n  42\nb: >-\n  true\n"));
  EXPECT_EQ(value, json({{"a", "42\n"}, {"b", "true"}}));
}

TEST(YamlToJson, StructureKeysAndMergeKeys) {
  const json value = yamlToJson(YAML::Load(R"(
defaults: &defaults {image: app:1, pullPolicy: Always}
container:
  <<: *defaults
  pullPolicy: IfNotPresent
list: [1, "2", {3: three}]
)"));
  EXPECT_EQ(value["container"], json({{"image", "app:1"}, {"pullPolicy", "IfNotPresent"}}));
  EXPECT_EQ(value["list"], json({1, "2", {{"3", "three"}}}));
}

TEST(YamlToJson, DuplicateAndComplexKeysAreErrorsWithTheirLine) {
  try {
    yamlToJson(YAML::Load("a: 1\nb: 2\na: 3\n"));
    FAIL() << "duplicate key accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("line 3, column 1: duplicate key \"a\""));
  }
  EXPECT_THROW(yamlToJson(YAML::Load("? [a, b]\n: 1\n")), Error);
  EXPECT_THROW(yamlToJson(YAML::Load("v: 0x1FFFFFFFFFFFFFFFFF\n")), Error);
  EXPECT_THROW(yamlToJson(YAML::Load("v: !!int abc\n")), Error);
}

TEST(YamlToJson, DepthIsBounded) {
  std::string deep = "v: ";
  for (int i = 0; i < 10; ++i) deep += "[";
  for (int i = 0; i < 10; ++i) deep += "]";
  YamlToJsonLimits limits;
  limits.maxDepth = 8;
  try {
    yamlToJson(YAML::Load(deep), limits);
    FAIL() << "depth not bounded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("nest deeper than 8 levels"));
  }
  limits.maxDepth = 11;
  EXPECT_NO_THROW(yamlToJson(YAML::Load(deep), limits));
}

TEST(YamlToJson, AliasExpansionIsBounded) {
  // Each level doubles the tree: 2^20 values from a few hundred bytes ("billion laughs").
  std::string bomb = "a0: &a0 [x, x]\n";
  for (int i = 1; i <= 20; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  }
  YamlToJsonLimits limits;
  limits.maxValues = 10'000;
  try {
    yamlToJson(YAML::Load(bomb), limits);
    FAIL() << "expansion not bounded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("expands to more than 10000 values"));
  }
}

TEST(YamlStreamToJson, DocumentsWithIndexesLinesAndEmptyOnesSkipped) {
  const std::string stream =
      "# leading comment\n"
      "---\n"
      "kind: Pod\n"
      "---\n"
      "# only a comment\n"
      "---\n"
      "kind: [unclosed\n"
      "--- {kind: Service}\n"
      "...\n"
      "---\n"
      "kind: Job\n"
      "a: 1\n"
      "a: 2\n";
  const std::vector<YamlDocument> documents = yamlStreamToJson(stream);
  ASSERT_EQ(documents.size(), 4u);
  EXPECT_EQ(documents[0].index, 1u);
  EXPECT_EQ(documents[0].line, 2u);
  EXPECT_EQ(*documents[0].value, json({{"kind", "Pod"}}));
  // Document 2 is empty: skipped, but counted.
  EXPECT_EQ(documents[1].index, 3u);
  EXPECT_FALSE(documents[1].value);
  EXPECT_THAT(documents[1].problem, HasSubstr("line "));
  EXPECT_EQ(documents[2].index, 4u);
  EXPECT_EQ(*documents[2].value, json({{"kind", "Service"}}));
  EXPECT_EQ(documents[3].index, 5u);
  EXPECT_FALSE(documents[3].value);
  EXPECT_THAT(documents[3].problem, HasSubstr("line 13, column 1: duplicate key \"a\""));
}

TEST(YamlStreamToJson, ImplicitSingleDocumentAndJsonText) {
  const auto documents = yamlStreamToJson("{\"kind\": \"List\", \"items\": []}\n");
  ASSERT_EQ(documents.size(), 1u);
  EXPECT_EQ(*documents[0].value, json({{"kind", "List"}, {"items", json::array()}}));
  EXPECT_TRUE(yamlStreamToJson("").empty());
  EXPECT_TRUE(yamlStreamToJson("---\n---\n# nothing\n").empty());
}

}  // namespace
}  // namespace imagegate
