#include "policy/evaluator.h"

#include <algorithm>

#include "policy/findings_memo.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

std::vector<Subject> subjectsOf(const ReviewPlan& plan, const ImageFactsMap& facts) {
  std::vector<Subject> subjects;
  subjects.reserve(plan.containers.size());
  for (const PlannedContainer& planned : plan.containers) {
    Subject subject = subjectOf(planned);
    if (planned.image) {
      const auto found = facts.find(*planned.image);
      if (found != facts.end()) subject.lookup = &found->second;
    }
    subjects.push_back(std::move(subject));
  }
  return subjects;
}

bool runsIn(const Rule& rule, PlanScope scope) {
  return scope == PlanScope::kPod || rule.type->level == RuleLevel::kImage;
}

bool memoizable(const Rule& rule) {
  return rule.type->level != RuleLevel::kPod && rule.check->readsOnlyImage();
}

/// One container's part in the memo: the findings of its image-only rules, in the order they run
/// (policy by policy, rule by rule), from an earlier evaluation or computed now to be kept.
struct ContainerMemo {
  std::string key;  ///< Empty: not memoized (nothing to memoize, or facts without a digest).
  std::shared_ptr<const Findings> stored;
  std::size_t next = 0;  ///< The next of `stored` to hand out.
  std::shared_ptr<Findings> computed;
  bool claimed = false;    ///< This evaluation computes them for everyone (see findOrClaim).
  bool elsewhere = false;  ///< Another evaluation is computing them.
};

constexpr std::size_t kNotShared = static_cast<std::size_t>(-1);

/// What a container's image-only findings depend on, besides the policy-set revision: the image
/// as written (messages quote it), what the registry said about it, named by the manifest's
/// digest, and the policies that select the container (they decide which rules run, in which
/// order). Empty when the registry's answer is no stable fact: an error (the next review may get
/// the facts), facts without a digest, or files that could not be read.
std::string memoKey(const ReviewPlan& plan, std::size_t index, const Subject& subject) {
  // Each text with its length in front: an image written with a newline in it (it does not parse,
  // and its findings say so) can never spell another image's key.
  std::string key;
  const auto add = [&key](std::string_view text) {
    key += std::to_string(text.size());
    key += ':';
    key += text;
  };
  add(subject.container->image);
  key += subject.lookup != nullptr ? 'F' : 'N';
  if (const ImageLookup* lookup = subject.lookup) {
    if (!lookup->facts || lookup->facts->manifestDigest.empty() || !lookup->filesError.empty()) {
      return {};
    }
    add(lookup->facts->manifestDigest);
    add(lookup->files ? "files" : "");
    add(lookup->filesNote);
  }
  for (const PlannedPolicy& planned : plan.policies) {
    for (const std::size_t selected : planned.containers) {
      if (selected != index) continue;
      const Policy* policy = planned.policy;
      key.append(reinterpret_cast<const char*>(&policy), sizeof policy);
    }
  }
  return key;
}

/// Findings another evaluation is computing (a burst of reviews of one new image): waiting for
/// them beats computing them again, but only for an evaluation that claimed nothing itself, so
/// that two evaluations never wait for each other.
void waitForOthers(std::vector<ContainerMemo>& memos, const MemoScope& scope) {
  if (std::any_of(memos.begin(), memos.end(), [](const auto& m) { return m.claimed; })) return;
  for (ContainerMemo& memo : memos) {
    if (!memo.elsewhere) continue;
    const MemoLookup found = scope.memo->findOrClaim(scope.revision, memo.key, true);
    memo.stored = found.findings;
    memo.claimed = found.claimed;
    if (memo.claimed) return;  // its claimant gave up: this evaluation computes the rest
  }
}

/// Looks up every container that has image-only rules to run. A container with the same key as
/// an earlier one of this plan shares its findings, found or being computed.
std::vector<ContainerMemo> lookUpMemos(const ReviewPlan& plan, const std::vector<Subject>& subjects,
                                       const MemoScope& scope) {
  std::vector<std::size_t> slots(plan.containers.size(), 0);
  for (const PlannedPolicy& planned : plan.policies) {
    std::size_t memoized = 0;
    for (const Rule& rule : planned.policy->rules) {
      if (runsIn(rule, plan.scope) && memoizable(rule)) ++memoized;
    }
    for (const std::size_t index : planned.containers) slots[index] += memoized;
  }
  std::vector<ContainerMemo> memos(plan.containers.size());
  std::vector<std::size_t> sharesWith(memos.size(), kNotShared);
  for (std::size_t i = 0; i < memos.size(); ++i) {
    if (slots[i] == 0) continue;
    ContainerMemo& memo = memos[i];
    memo.key = memoKey(plan, i, subjects[i]);
    if (memo.key.empty()) continue;
    for (std::size_t j = 0; j < i && sharesWith[i] == kNotShared; ++j) {
      if (memos[j].key == memo.key) sharesWith[i] = j;
    }
    if (sharesWith[i] != kNotShared) continue;
    const MemoLookup found = scope.memo->findOrClaim(scope.revision, memo.key, false);
    memo.stored = found.findings;
    memo.claimed = found.claimed;
    memo.elsewhere = !found.findings && !found.claimed;
  }
  waitForOthers(memos, scope);
  for (std::size_t i = 0; i < memos.size(); ++i) {
    ContainerMemo& memo = memos[i];
    if (memo.key.empty() || memo.stored || sharesWith[i] != kNotShared) continue;
    memo.computed = std::make_shared<Findings>();
    memo.computed->reserve(slots[i]);
  }
  for (std::size_t i = 0; i < memos.size(); ++i) {
    if (sharesWith[i] == kNotShared) continue;
    // Computed ones are filled before this container's turn in every rule.
    const ContainerMemo& first = memos[sharesWith[i]];
    memos[i].stored = first.computed ? first.computed : first.stored;
  }
  return memos;
}

/// Ends this evaluation's claims: with what it computed, or, when it failed, without.
class MemoClaims {
 public:
  MemoClaims(std::vector<ContainerMemo>& memos, const MemoScope& scope)
      : memos_(memos), scope_(scope) {}
  ~MemoClaims() {
    for (ContainerMemo& memo : memos_) {
      if (memo.claimed) scope_.memo->abandon(scope_.revision, memo.key);
    }
  }
  MemoClaims(const MemoClaims&) = delete;
  MemoClaims& operator=(const MemoClaims&) = delete;

  void store() {
    for (ContainerMemo& memo : memos_) {
      if (!memo.computed) continue;
      memo.claimed = false;
      scope_.memo->store(scope_.revision, std::move(memo.key), std::move(memo.computed));
    }
  }

 private:
  std::vector<ContainerMemo>& memos_;
  const MemoScope& scope_;
};

/// The finding of an image-only rule: the stored one, or the rule's, kept for the memo.
Finding memoizedFinding(const Rule& rule, const Target& target, ContainerMemo& memo) {
  if (memo.stored && memo.next < memo.stored->size()) return (*memo.stored)[memo.next++];
  Finding finding = rule.check->check(target);
  if (memo.computed) memo.computed->push_back(finding);
  return finding;
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
                    const std::vector<Subject>& subjects, std::vector<ContainerMemo>& memos,
                    std::vector<RuleResult>& results) {
  const Policy& policy = *planned.policy;
  for (const Rule& rule : policy.rules) {
    if (!runsIn(rule, plan.scope)) continue;
    if (rule.type->level == RuleLevel::kPod) {
      const Target target{*plan.pod, nullptr, policy.onFetchError};
      results.push_back(makeResult(policy, rule, nullptr, rule.check->check(target)));
      continue;
    }
    const bool fromMemo = !memos.empty() && memoizable(rule);
    for (const std::size_t index : planned.containers) {
      const Subject* subject = &subjects[index];
      const Target target{*plan.pod, subject, policy.onFetchError};
      Finding finding =
          fromMemo ? memoizedFinding(rule, target, memos[index]) : rule.check->check(target);
      results.push_back(makeResult(policy, rule, subject, std::move(finding)));
    }
  }
}

/// How many results evaluate() gives: one per pod-level rule, one per container for the others.
std::size_t resultCount(const ReviewPlan& plan) {
  std::size_t count = 0;
  for (const PlannedPolicy& planned : plan.policies) {
    for (const Rule& rule : planned.policy->rules) {
      if (!runsIn(rule, plan.scope)) continue;
      count += rule.type->level == RuleLevel::kPod ? 1 : planned.containers.size();
    }
  }
  return count;
}

}  // namespace

std::vector<RuleResult> evaluate(const ReviewPlan& plan, const ImageFactsMap& facts) {
  return evaluate(plan, facts, MemoScope{});
}

std::vector<RuleResult> evaluate(const ReviewPlan& plan, const ImageFactsMap& facts,
                                 const MemoScope& memo) {
  std::vector<RuleResult> results;
  if (plan.pod == nullptr) return results;
  results.reserve(resultCount(plan));
  const std::vector<Subject> subjects = subjectsOf(plan, facts);
  std::vector<ContainerMemo> memos;
  if (memo.memo != nullptr) memos = lookUpMemos(plan, subjects, memo);
  MemoClaims claims(memos, memo);
  for (const PlannedPolicy& planned : plan.policies) {
    evaluatePolicy(plan, planned, subjects, memos, results);
  }
  if (memo.memo != nullptr) claims.store();
  return results;
}

std::vector<RuleResult> evaluate(const PolicySet& policies, const admission::ReviewedObject& object,
                                 std::string_view namespaceName, const ImageFactsMap& facts) {
  return evaluate(planReview(policies, object, namespaceName), facts);
}

}  // namespace imagegate::policy
