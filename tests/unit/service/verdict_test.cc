#include "service/verdict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace imagegate::service {
namespace {

using policy::Action;
using policy::RuleResult;
using policy::RuleStatus;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

RuleResult failure(std::string policyName, std::string rule, Action action, std::string container,
                   std::string message) {
  RuleResult r;
  r.policy = std::move(policyName);
  r.rule = std::move(rule);
  r.action = action;
  r.status = RuleStatus::kFail;
  r.container = std::move(container);
  r.containerKind = admission::ContainerKind::kContainer;
  r.message = std::move(message);
  r.remediation = "set securityContext.readOnlyRootFilesystem: true";
  return r;
}

const std::string kWritable =
    "root filesystem is writable: securityContext.readOnlyRootFilesystem is not set (Kubernetes "
    "defaults it to false)";

std::size_t total(const std::vector<std::string>& warnings) {
  return std::accumulate(warnings.begin(), warnings.end(), std::size_t{0},
                         [](std::size_t sum, const std::string& w) { return sum + w.size(); });
}

TEST(ComposeWarnings, OneContainerGetsTheWholeMessageWhenItFits) {
  const auto warnings = composeWarnings(
      {failure("hardening", "ro", Action::kAudit, "app", "root filesystem is writable")});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "imagegate audit hardening/ro: container \"app\": root filesystem is writable");
}

TEST(ComposeWarnings, ALongMessageGivesItsHeadlineRatherThanACut) {
  const auto warnings = composeWarnings(
      {failure("production-hardening", "read-only-root", Action::kWarn, "api-server", kWritable)});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "imagegate warn production-hardening/read-only-root: container \"api-server\": root "
            "filesystem is writable");
}

TEST(ComposeWarnings, LongNamesStillNameTheContainer) {
  const auto warnings =
      composeWarnings({failure("production-hardening", "read-only-root-filesystem", Action::kWarn,
                               "application-server", kWritable)});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_LE(warnings[0].size(), admission::kMaxWarningLength);
  EXPECT_EQ(warnings[0],
            "imagegate warn production-hardening/read-only-root-filesystem: application-server: "
            "root filesystem is writable");
}

TEST(ComposeWarnings, FortyContainersOfOneRuleAreOneCompleteWarning) {
  std::vector<RuleResult> results;
  for (int i = 0; i < 40; ++i) {
    results.push_back(failure("hardening", "ro-rootfs", Action::kAudit,
                              "worker-" + std::to_string(i), kWritable));
  }
  const auto warnings = composeWarnings(results);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_LE(warnings[0].size(), admission::kMaxWarningLength);
  EXPECT_THAT(warnings[0], AllOf(HasSubstr("hardening/ro-rootfs"), HasSubstr("worker-0, worker-1"),
                                 HasSubstr(" more: root filesystem is writable")));
  EXPECT_THAT(warnings[0], Not(HasSubstr("...")));
  // The names listed and the count of the others add up to the forty.
  const std::size_t listed =
      static_cast<std::size_t>(std::count(warnings[0].begin(), warnings[0].end(), ',') + 1);
  const std::size_t andPos = warnings[0].find(" and ");
  ASSERT_NE(andPos, std::string::npos);
  EXPECT_EQ(listed + std::stoul(warnings[0].substr(andPos + 5)), 40u);
}

TEST(ComposeWarnings, FortyContainersUnderAnAuditAndAWarnPolicyKeepBothPoliciesVisible) {
  std::vector<RuleResult> results;
  // The Audit policy has many rules failing on every container: far more than 4096 characters
  // if each finding were its own warning; the Warn policy has a single finding, listed last.
  for (int rule = 0; rule < 60; ++rule) {
    for (int i = 0; i < 40; ++i) {
      results.push_back(failure("audit-everything", "rule-" + std::to_string(rule), Action::kAudit,
                                "c" + std::to_string(i), kWritable));
    }
  }
  results.push_back(
      failure("soft", "latest-tag", Action::kWarn, "c7", "image tag is latest: pin a version"));
  const auto warnings = composeWarnings(results);
  EXPECT_LE(total(warnings), admission::kMaxWarningsTotal);
  for (const std::string& w : warnings) EXPECT_LE(w.size(), admission::kMaxWarningLength) << w;
  EXPECT_EQ(warnings.back(),
            "imagegate warn soft/latest-tag: container \"c7\": image tag is latest: pin a version");
  EXPECT_THAT(warnings[warnings.size() - 2],
              AllOf(HasSubstr("more findings of audit-everything"), HasSubstr("imagegate log")));
}

TEST(ComposeWarnings, PoliciesThatNeedLittleKeepAllOfIt) {
  std::vector<RuleResult> results;
  for (int rule = 0; rule < 100; ++rule) {
    results.push_back(
        failure("big", "rule-" + std::to_string(rule), Action::kAudit, "app", kWritable));
  }
  results.push_back(failure("small-a", "one", Action::kWarn, "app", "problem a"));
  results.push_back(failure("small-b", "two", Action::kAudit, "app", "problem b"));
  const auto warnings = composeWarnings(results);
  EXPECT_LE(total(warnings), admission::kMaxWarningsTotal);
  const auto count = [&](const std::string& needle) {
    return std::count_if(warnings.begin(), warnings.end(),
                         [&](const std::string& w) { return w.find(needle) != std::string::npos; });
  };
  EXPECT_EQ(count("small-a/one"), 1);
  EXPECT_EQ(count("small-b/two"), 1);
  // The big policy uses what the small ones leave: more than a third of the budget.
  EXPECT_GT(count("big/rule-") * 90, static_cast<long>(admission::kMaxWarningsTotal / 3));
}

TEST(ComposeWarnings, EnforceFailuresAreNotWarningsButUncheckedRulesAre) {
  RuleResult unchecked = failure("prod", "non-root", Action::kEnforce, "app",
                                 "not checked: the registry did not answer");
  unchecked.status = RuleStatus::kWarning;
  const auto warnings = composeWarnings(
      {failure("prod", "non-root", Action::kEnforce, "web", "runs as root"), unchecked});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("not checked"));
}

TEST(ComposeWarnings, AnUncheckedRuleKeepsWhyAsFarAsItFits) {
  RuleResult unchecked =
      failure("prod", "non-root", Action::kEnforce, "app",
              "not checked: cannot fetch registry.example.com/team/app:1.2: connection refused "
              "(allowed by onFetchError: Allow)");
  unchecked.status = RuleStatus::kWarning;
  const auto warnings = composeWarnings({unchecked});
  ASSERT_EQ(warnings.size(), 1u);
  // The bare container name leaves room for the registry's answer.
  EXPECT_EQ(warnings[0],
            "imagegate warn prod/non-root: app: not checked: cannot fetch "
            "registry.example.com/team/app:1.2: connection refused");
}

TEST(ComposeWarnings, PodLevelRulesNamePod) {
  RuleResult pod = failure("pss", "host-namespaces", Action::kAudit, "", "uses hostNetwork");
  pod.container.reset();
  const auto warnings = composeWarnings({pod});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "imagegate audit pss/host-namespaces: pod: uses hostNetwork");
}

TEST(VerdictFor, AuditFindingsKeepTheirFixInTheAnnotation) {
  admission::AdmissionRequest request;
  request.kind = "Pod";
  request.name = "web";
  const auto verdict =
      verdictFor(request, {failure("hardening", "ro", Action::kAudit, "app", kWritable)});
  EXPECT_TRUE(verdict.allowed);
  EXPECT_THAT(verdict.auditAnnotations.at("hardening"),
              AllOf(HasSubstr("container \"app\""), HasSubstr("fix: set securityContext")));
}

}  // namespace
}  // namespace imagegate::service
