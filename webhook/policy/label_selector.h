#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "policy/model.h"

// Kubernetes metav1.LabelSelector semantics, as admission webhooks' objectSelector applies them.
namespace imagegate::policy {

/// True when `labels` satisfy every matchLabels entry and every matchExpressions requirement.
/// An empty selector matches everything; NotIn and DoesNotExist match objects without the key.
bool selectorMatches(const LabelSelector& selector,
                     const std::map<std::string, std::string>& labels);

/// Why a requirement is invalid (In/NotIn without values, Exists/DoesNotExist with values, bad
/// key or value syntax), as the API server would reject it; nullopt when valid.
std::optional<std::string> requirementProblem(const LabelSelectorRequirement& requirement);

/// Why `key` is not a valid label key ([prefix/]name, name at most 63 characters), or nullopt.
std::optional<std::string> labelKeyProblem(std::string_view key);

/// Why `value` is not a valid label value (at most 63 characters, may be empty), or nullopt.
std::optional<std::string> labelValueProblem(std::string_view value);

/// Parses "In", "NotIn", "Exists", "DoesNotExist" (case-sensitive, as Kubernetes does).
std::optional<LabelSelectorRequirement::Operator> parseSelectorOperator(std::string_view text);

}  // namespace imagegate::policy
