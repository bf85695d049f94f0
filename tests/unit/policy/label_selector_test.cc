#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "policy/label_selector.h"

namespace imagegate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;
using Operator = LabelSelectorRequirement::Operator;

TEST(SelectorMatches, InRequiresThePresentKeyWithAListedValue) {
  const LabelSelector selector{{}, {{"env", Operator::kIn, {"prod", "staging"}}}};
  EXPECT_TRUE(selectorMatches(selector, {{"env", "prod"}}));
  EXPECT_FALSE(selectorMatches(selector, {{"env", "dev"}}));
  EXPECT_FALSE(selectorMatches(selector, {}));
}

TEST(SelectorMatches, NotInMatchesAbsentKeys) {
  const LabelSelector selector{{}, {{"env", Operator::kNotIn, {"dev"}}}};
  EXPECT_TRUE(selectorMatches(selector, {}));
  EXPECT_TRUE(selectorMatches(selector, {{"env", "prod"}}));
  EXPECT_FALSE(selectorMatches(selector, {{"env", "dev"}}));
}

TEST(SelectorMatches, ExistsAndDoesNotExist) {
  const LabelSelector exists{{}, {{"canary", Operator::kExists, {}}}};
  EXPECT_TRUE(selectorMatches(exists, {{"canary", ""}}));
  EXPECT_FALSE(selectorMatches(exists, {{"other", "x"}}));
  const LabelSelector absent{{}, {{"legacy", Operator::kDoesNotExist, {}}}};
  EXPECT_TRUE(selectorMatches(absent, {{"other", "x"}}));
  EXPECT_FALSE(selectorMatches(absent, {{"legacy", "true"}}));
}

TEST(SelectorMatches, AllTermsMustHold) {
  const LabelSelector selector{
      {{"app", "shop"}},
      {{"env", Operator::kIn, {"prod"}}, {"legacy", Operator::kDoesNotExist, {}}}};
  EXPECT_TRUE(selectorMatches(selector, {{"app", "shop"}, {"env", "prod"}}));
  EXPECT_FALSE(selectorMatches(selector, {{"app", "shop"}, {"env", "prod"}, {"legacy", "1"}}));
  EXPECT_FALSE(selectorMatches(selector, {{"app", "cart"}, {"env", "prod"}}));
  EXPECT_FALSE(selectorMatches(selector, {{"env", "prod"}}));
}

TEST(SelectorValidation, RequirementsLikeKubernetes) {
  EXPECT_EQ(requirementProblem({"env", Operator::kIn, {"a"}}), std::nullopt);
  EXPECT_EQ(requirementProblem({"env", Operator::kExists, {}}), std::nullopt);
  EXPECT_THAT(requirementProblem({"env", Operator::kIn, {}}), Optional(HasSubstr("at least one")));
  EXPECT_THAT(requirementProblem({"env", Operator::kNotIn, {}}), Optional(HasSubstr("NotIn")));
  EXPECT_THAT(requirementProblem({"env", Operator::kExists, {"a"}}),
              Optional(HasSubstr("must not have values")));
  EXPECT_THAT(requirementProblem({"env", Operator::kDoesNotExist, {"a"}}),
              Optional(HasSubstr("must not have values")));
  EXPECT_THAT(requirementProblem({"env", Operator::kIn, {"bad value"}}),
              Optional(HasSubstr("label value \"bad value\"")));
}

TEST(SelectorValidation, LabelKeysAndValues) {
  EXPECT_EQ(labelKeyProblem("app"), std::nullopt);
  EXPECT_EQ(labelKeyProblem("app.kubernetes.io/name"), std::nullopt);
  EXPECT_EQ(labelKeyProblem("A_b.c-D"), std::nullopt);
  EXPECT_THAT(labelKeyProblem(""), Optional(HasSubstr("label key \"\"")));
  EXPECT_THAT(labelKeyProblem(std::string(64, 'a')), Optional(HasSubstr("1-63")));
  EXPECT_THAT(labelKeyProblem("Example.com/app"), Optional(HasSubstr("prefix \"Example.com\"")));
  EXPECT_THAT(labelKeyProblem("example.com/"), Optional(HasSubstr("label key")));
  EXPECT_THAT(labelKeyProblem("-app"), Optional(HasSubstr("label key")));
  EXPECT_EQ(labelValueProblem(""), std::nullopt);
  EXPECT_EQ(labelValueProblem("v1.2_x-y"), std::nullopt);
  EXPECT_THAT(labelValueProblem("v1."), Optional(HasSubstr("label value")));
  EXPECT_THAT(labelValueProblem(std::string(64, 'v')), Optional(HasSubstr("at most 63")));
}

TEST(SelectorValidation, OperatorsAreCaseSensitive) {
  EXPECT_EQ(parseSelectorOperator("In"), Operator::kIn);
  EXPECT_EQ(parseSelectorOperator("NotIn"), Operator::kNotIn);
  EXPECT_EQ(parseSelectorOperator("Exists"), Operator::kExists);
  EXPECT_EQ(parseSelectorOperator("DoesNotExist"), Operator::kDoesNotExist);
  EXPECT_EQ(parseSelectorOperator("in"), std::nullopt);
  EXPECT_EQ(parseSelectorOperator("NotExists"), std::nullopt);
}

}  // namespace
}  // namespace imagegate::policy
