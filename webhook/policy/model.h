#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/rule.h"

// The in-memory form of the ImagePolicy YAML (apiVersion imagegate.dev/v1alpha1). The format is
// documented in policies/README.md; this header mirrors it, except rule bodies, which each
// rule type reads into its own RuleCheck (policy/rule.h).
namespace imagegate::policy {

enum class Action {
  kEnforce,  ///< Deny on violation.
  kAudit,    ///< Dry run: allow, report as warnings, auditAnnotations, logs and metrics.
  kWarn,     ///< Allow, report as warnings only.
};

/// The word a policy writes for `action`, as in `spec.action: Enforce`.
constexpr std::string_view actionName(Action action) {
  switch (action) {
    case Action::kEnforce:
      return "Enforce";
    case Action::kAudit:
      return "Audit";
    case Action::kWarn:
      return "Warn";
  }
  return "Enforce";
}

/// The action a policy's word names; nullopt for anything else.
constexpr std::optional<Action> parseAction(std::string_view word) {
  for (const Action action : {Action::kEnforce, Action::kAudit, Action::kWarn}) {
    if (actionName(action) == word) return action;
  }
  return std::nullopt;
}

struct LabelSelectorRequirement {
  enum class Operator { kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Operator op = Operator::kIn;
  std::vector<std::string> values;
};

/// A Kubernetes metav1.LabelSelector. An empty selector matches every object.
struct LabelSelector {
  std::map<std::string, std::string> matchLabels;
  std::vector<LabelSelectorRequirement> matchExpressions;
};

struct Match {
  std::vector<std::string> namespaces{"*"};  ///< Globs.
  std::vector<std::string> excludeNamespaces;
  LabelSelector objectSelector;
  std::vector<std::string> images{"*"};  ///< Image globs on the normalized reference.
  std::vector<std::string> excludeImages;
};

/// One entry of spec.rules: its name and its rule type's check, configured by the rule's body.
struct Rule {
  std::string name;
  const RuleType* type = nullptr;  ///< An entry of ruleTypes().
  std::shared_ptr<const RuleCheck> check;
};

/// What happens when a rule needs image facts (config, sizes) that cannot be fetched.
enum class OnFetchError {
  kDeny,   ///< The rule fails with the registry error (a denial under Enforce).
  kAllow,  ///< The rule passes with a warning naming the registry error.
};

struct Policy {
  std::string name;
  std::string sourceFile;  ///< Where it was loaded from, for messages.
  Action action = Action::kEnforce;
  OnFetchError onFetchError = OnFetchError::kDeny;
  Match match;
  std::vector<Rule> rules;
};

struct PolicySet {
  std::vector<Policy> policies;
};

}  // namespace imagegate::policy
