#pragma once

#include <string>
#include <vector>

#include "admission/response.h"
#include "admission/review.h"
#include "policy/evaluator.h"

// From rule results to what the API server is told: the denial message, the warnings kubectl
// prints, and the audit annotations. The full story (every finding with its fix) goes in the
// denial, the annotations and the log; warnings are the short form people read at `kubectl apply`.
namespace imagegate::service {

/// Enforce failures deny, with every finding and its fix in status.message; Audit findings go
/// into auditAnnotations; Audit and Warn findings, and rules that could not be checked but were
/// allowed by onFetchError, become warnings (composeWarnings).
admission::Verdict verdictFor(const admission::AdmissionRequest& request,
                              const std::vector<policy::RuleResult>& results);

/// One warning per (policy, rule, mode), naming the containers it concerns ("containers a, b and
/// 38 more"), each complete within admission::kMaxWarningLength by construction: the problem is
/// the rule's whole message when it fits, else the longest of its leading clauses that does, down
/// to the headline every rule message starts with ("root filesystem is writable: ..."). The
/// admission::kMaxWarningsTotal budget is shared fairly between policies, so that one policy's
/// many findings cannot crowd out another's; a policy whose warnings do not all fit ends with one
/// saying how many were left out and where to read them.
std::vector<std::string> composeWarnings(const std::vector<policy::RuleResult>& results);

/// "container \"app\"", "init container \"setup\"", or "pod" for pod-level rules.
std::string subject(const policy::RuleResult& result);

/// The subject, the message and the fix, for denials, annotations and reports.
std::string describeFinding(const policy::RuleResult& result);

}  // namespace imagegate::service
