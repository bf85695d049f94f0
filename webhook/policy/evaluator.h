#pragma once

#include <optional>
#include <string>
#include <vector>

#include "admission/review.h"
#include "policy/model.h"

// Pure evaluation: no I/O, deterministic, safe to call from many threads at once.
namespace imagegate::policy {

enum class RuleStatus {
  kPass,   ///< Checked and satisfied.
  kFail,   ///< Checked and violated.
  kError,  ///< Could not be evaluated (e.g. an image reference that does not parse).
};

struct RuleResult {
  std::string policy;
  std::string rule;
  Action action = Action::kEnforce;
  RuleStatus status = RuleStatus::kPass;
  /// The container concerned; nullopt for pod-level rules (hostNamespaces).
  std::optional<std::string> container;
  std::optional<admission::ContainerKind> containerKind;
  std::string message;  ///< What is wrong, e.g. "runs as root: securityContext.runAsUser is 0".
  std::string
      remediation;  ///< What to change, e.g. "set securityContext.runAsUser to a non-zero UID".
};

/// True when `policy` applies to the object (namespace globs and objectSelector). Image globs
/// are applied per container inside evaluate().
bool policyMatchesObject(const Policy& policy, const admission::AdmissionRequest& request);

/// Evaluates every matching policy's rules on every matching container of the request's pod spec.
/// Returns one RuleResult per (policy, rule, container) that was checked; results for pod-level
/// rules have no container. A request without a pod spec yields no results.
std::vector<RuleResult> evaluate(const PolicySet& policies,
                                 const admission::AdmissionRequest& request);

}  // namespace imagegate::policy
