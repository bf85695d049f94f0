#include "policy/evaluator.h"

#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

std::vector<Subject> subjectsOf(const ReviewPlan& plan, const ImageFactsMap& facts) {
  std::vector<Subject> subjects;
  subjects.reserve(plan.containers.size());
  for (const PlannedContainer& planned : plan.containers) {
    Subject subject{planned.container, planned.image, planned.imageProblem, nullptr};
    if (planned.image) {
      const auto found = facts.find(*planned.image);
      if (found != facts.end()) subject.lookup = &found->second;
    }
    subjects.push_back(std::move(subject));
  }
  return subjects;
}

RuleResult makeResult(const Policy& policy, const Rule& rule, const Subject* subject,
                      Finding finding) {
  RuleResult result;
  result.policy = policy.name;
  result.rule = rule.name;
  result.action = policy.action;
  result.status = finding.status;
  if (subject != nullptr) {
    result.container = subject->container->name;
    result.containerKind = subject->container->kind;
  }
  result.message = std::move(finding.message);
  result.remediation = std::move(finding.remediation);
  result.files = std::move(finding.files);
  return result;
}

void evaluatePolicy(const ReviewPlan& plan, const PlannedPolicy& planned,
                    const std::vector<Subject>& subjects, std::vector<RuleResult>& results) {
  const Policy& policy = *planned.policy;
  const auto run = [&](const Rule& rule, const Subject* subject) {
    const Target target{*plan.pod, subject, policy.onFetchError};
    results.push_back(makeResult(policy, rule, subject, rule.check->check(target)));
  };
  for (const Rule& rule : policy.rules) {
    if (plan.scope == PlanScope::kImageOnly && rule.type->level != RuleLevel::kImage) continue;
    if (rule.type->level == RuleLevel::kPod) {
      run(rule, nullptr);
      continue;
    }
    for (const std::size_t index : planned.containers) run(rule, &subjects[index]);
  }
}

}  // namespace

std::vector<RuleResult> evaluate(const ReviewPlan& plan, const ImageFactsMap& facts) {
  std::vector<RuleResult> results;
  if (plan.pod == nullptr) return results;
  const std::vector<Subject> subjects = subjectsOf(plan, facts);
  for (const PlannedPolicy& planned : plan.policies) {
    evaluatePolicy(plan, planned, subjects, results);
  }
  return results;
}

std::vector<RuleResult> evaluate(const PolicySet& policies, const admission::ReviewedObject& object,
                                 std::string_view namespaceName, const ImageFactsMap& facts) {
  return evaluate(planReview(policies, object, namespaceName), facts);
}

}  // namespace imagegate::policy
