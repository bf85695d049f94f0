#include "common/yaml_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "common/load_problem.h"

namespace imagegate {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

auto problemAt(int line, int column, const std::string& text) {
  return AllOf(Field(&LoadProblem::file, "f.yaml"), Field(&LoadProblem::line, line),
               Field(&LoadProblem::column, column), Field(&LoadProblem::message, HasSubstr(text)));
}

// One YAML text read through Fields, with the problems it reported.
class FieldsTest : public ::testing::Test {
 protected:
  Fields read(const std::string& yaml, std::optional<Fields::Keys> allowed) {
    node_ = YAML::Load(yaml);
    return Fields(node_, "", std::move(allowed), diag_);
  }

  std::vector<LoadProblem> problems_;
  Diagnostics diag_{"f.yaml", problems_, "the test file"};
  YAML::Node node_;
};

TEST(LoadProblem, TextIsFileLineColumnMessage) {
  EXPECT_EQ((LoadProblem{"a.yaml", 3, 7, "bad"}).str(), "a.yaml:3:7: bad");
  EXPECT_EQ((LoadProblem{"a.yaml", 3, 0, "bad"}).str(), "a.yaml:3: bad");
  EXPECT_EQ((LoadProblem{"a.yaml", 0, 0, "missing"}).str(), "a.yaml: missing");
}

TEST(LoadProblem, ErrorListsEveryProblemOnePerLine) {
  const LoadError error({{"a.yaml", 1, 2, "first"}, {"b.yaml", 3, 4, "second"}});
  EXPECT_EQ(std::string(error.what()), "a.yaml:1:2: first\nb.yaml:3:4: second");
  EXPECT_EQ(error.problems().size(), 2u);
}

TEST(YamlFieldsWords, DescribeJoinIndexed) {
  EXPECT_EQ(describeType(YAML::Load("{a: 1}")), "a mapping");
  EXPECT_EQ(describeType(YAML::Load("[1]")), "a list");
  EXPECT_EQ(describeType(YAML::Load("text")), "\"text\"");
  EXPECT_EQ(describeType(YAML::Load("~")), "null");
  EXPECT_EQ(joinWords({}), "");
  EXPECT_EQ(joinWords({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(indexed("spec.rules", 2), "spec.rules[2]");
}

TEST_F(FieldsTest, DiagnosticsPositionsAreOneBased) {
  const Fields fields = read("a: 1\nb:   2\n", std::nullopt);
  diag_.report(fields.keyMark("b"), "here");
  EXPECT_EQ(diag_.where(fields.keyMark("b")), "f.yaml:2:1");
  diag_.report(YAML::Mark::null_mark(), "nowhere");
  EXPECT_THAT(problems_, ElementsAre(problemAt(2, 1, "here"), problemAt(0, 0, "nowhere")));
}

TEST_F(FieldsTest, EveryUnknownFieldIsReportedWithTheAllowedOnes) {
  const Fields fields = read("name: x\nnmae: y\nextra: z\n", Fields::Keys{"name", "kind"});
  EXPECT_TRUE(fields.ok());
  EXPECT_THAT(fields.string("name"), Optional(Field(&Scalar::text, "x")));
  EXPECT_THAT(
      problems_,
      ElementsAre(problemAt(2, 1, "nmae: unknown field \"nmae\" (allowed here: name, kind)"),
                  problemAt(3, 1, "extra: unknown field \"extra\"")));
}

TEST_F(FieldsTest, EmptyKeyListTakesNoOptionsAndNulloptTakesAny) {
  read("a: 1\n", Fields::Keys{});
  read("any: 1\nother: 2\n", std::nullopt);
  EXPECT_THAT(problems_, ElementsAre(problemAt(1, 1, "this takes no options; write {}")));
}

TEST_F(FieldsTest, DuplicateKeysPointAtTheFirst) {
  read("a: 1\nb: 2\na: 3\n", std::nullopt);
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(3, 1, "a is given more than once (first at f.yaml:1:1)")));
}

TEST_F(FieldsTest, DocumentThatIsNotAMappingIsNamed) {
  const Fields fields = read("- a\n", std::nullopt);
  EXPECT_FALSE(fields.ok());
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(1, 1, "the test file must be a mapping, got a list")));
}

TEST_F(FieldsTest, NullAndAbsentAreAlikeAndRequiredSaysWhere) {
  const Fields fields = read("top:\n  a: ~\n", std::nullopt);
  const Fields top = fields.sub("top", std::nullopt);
  EXPECT_TRUE(top.has("a"));
  EXPECT_FALSE(top.has("b"));
  EXPECT_EQ(top.value("a"), std::nullopt);
  EXPECT_EQ(top.required("a"), std::nullopt);
  EXPECT_EQ(top.required("b"), std::nullopt);
  EXPECT_THAT(problems_, ElementsAre(problemAt(2, 3, "top.a is required"),
                                     problemAt(2, 3, "top.b is required")));
}

TEST_F(FieldsTest, SubOfAnAbsentOrNullKeyIsEmptyAndLocatedAtTheKey) {
  const Fields fields = read("x: 1\nempty:\n", Fields::Keys{"x", "empty", "missing"});
  const Fields empty = fields.sub("empty", Fields::Keys{"need"});
  EXPECT_TRUE(empty.ok());
  EXPECT_EQ(empty.required("need"), std::nullopt);
  const Fields missing = fields.sub("missing", Fields::Keys{"need"});
  EXPECT_EQ(missing.required("need"), std::nullopt);
  EXPECT_THAT(problems_, ElementsAre(problemAt(2, 1, "empty.need is required"),
                                     problemAt(1, 1, "missing.need is required")));
}

TEST_F(FieldsTest, NestedUnknownFieldHasItsPath) {
  const Fields fields = read("outer:\n  inner:\n    bogus: 1\n", Fields::Keys{"outer"});
  fields.sub("outer", Fields::Keys{"inner"}).sub("inner", Fields::Keys{"ok"});
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(3, 5,
                                    "outer.inner.bogus: unknown field \"bogus\" (allowed "
                                    "here: ok)")));
}

TEST_F(FieldsTest, BooleansAreOnlyTrueAndFalse) {
  const Fields fields =
      read("a: true\nb: False\nc: TRUE\nd: \"true\"\ne: 1\nf: [true]\n", std::nullopt);
  EXPECT_THAT(fields.boolean("a"), Optional(true));
  EXPECT_THAT(fields.boolean("b"), Optional(false));
  EXPECT_THAT(fields.boolean("c"), Optional(true));
  EXPECT_EQ(fields.boolean("d"), std::nullopt);
  EXPECT_EQ(fields.boolean("e"), std::nullopt);
  EXPECT_EQ(fields.boolean("f"), std::nullopt);
  EXPECT_EQ(fields.boolean("absent"), std::nullopt);
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(4, 4, "d must be a boolean (true or false), got \"true\""),
                          problemAt(5, 4, "e must be a boolean (true or false), got \"1\""),
                          problemAt(6, 4, "f must be a boolean (true or false), got a list")));
}

TEST_F(FieldsTest, Yaml11BooleanWordsAreRejectedWithTheWordToWrite) {
  const Fields fields = read("a: yes\nb: on\nc: No\nd: OFF\ne: y\n", std::nullopt);
  for (const char* key : {"a", "b", "c", "d", "e"}) EXPECT_EQ(fields.boolean(key), std::nullopt);
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(1, 4, "got \"yes\": YAML 1.1 words"),
                          problemAt(2, 4, "got \"on\""), problemAt(3, 4, "write false"),
                          problemAt(4, 4, "write false"), problemAt(5, 4, "write true")));
  EXPECT_THAT(problems_[0].message, HasSubstr("are not booleans in Kubernetes' YAML; write true"));
}

TEST_F(FieldsTest, StringsAndStringLists) {
  const Fields fields = read("s: text\nn: 5\nm: {a: 1}\nl: [a, [b], c]\nnot: x\n", std::nullopt);
  EXPECT_THAT(fields.string("s"), Optional(Field(&Scalar::text, "text")));
  EXPECT_THAT(fields.string("n"), Optional(Field(&Scalar::text, "5")));
  EXPECT_EQ(fields.string("m"), std::nullopt);
  const auto list = fields.strings("l");
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].text, "c");
  EXPECT_EQ((*list)[1].mark.line, 3);
  EXPECT_EQ(fields.strings("not"), std::nullopt);
  EXPECT_THAT(problems_, ElementsAre(problemAt(3, 4, "m must be a string, got a mapping"),
                                     problemAt(4, 8, "l[1] must be a string, got a list"),
                                     problemAt(5, 6, "not must be a list of strings, got \"x\"")));
}

TEST_F(FieldsTest, StringMapIsSortedByKey) {
  const Fields fields = read("labels: {b: \"2\", a: x, c: [no]}\n", std::nullopt);
  const auto entries = fields.stringMap("labels");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first.text, "a");
  EXPECT_EQ(entries[0].second.text, "x");
  EXPECT_EQ(entries[1].first.text, "b");
  EXPECT_THAT(problems_, ElementsAre(problemAt(1, 27, "labels.c must be a string, got a list")));
}

TEST_F(FieldsTest, NonStringKeysAreReported) {
  read("[a]: 1\n", std::nullopt);
  EXPECT_THAT(problems_,
              ElementsAre(problemAt(1, 1, "the test file: field names must be strings")));
}

TEST_F(FieldsTest, NoProblemsForAGoodMapping) {
  const Fields fields = read("a: true\nb: [x]\n", Fields::Keys{"a", "b"});
  EXPECT_THAT(fields.boolean("a"), Optional(true));
  EXPECT_TRUE(fields.strings("b").has_value());
  EXPECT_THAT(problems_, IsEmpty());
}

}  // namespace
}  // namespace imagegate
