#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admission/review.h"
#include "image/image_ref.h"
#include "policy/evaluator.h"
#include "policy/fields.h"
#include "policy/findings_memo.h"
#include "policy/rule.h"

// What the rule families under rules/ and the evaluator share; internal to the policy module.
namespace imagegate::policy {

/// A container with its image parsed once for all policies and rules. Points into the plan (a
/// Subject is made per rule and container: no copies of the reference).
struct Subject {
  const admission::Container* container = nullptr;
  const image::ImageRef* image = nullptr;     ///< Null when the reference does not parse.
  const std::string* imageProblem = nullptr;  ///< InvalidReference message when `image` is null.
  const ImageLookup* lookup = nullptr;        ///< Registry facts, when they were fetched.
};

/// The plan's container as a rule sees it, with no registry facts yet.
inline Subject subjectOf(const PlannedContainer& planned) {
  return {planned.container, planned.image ? &*planned.image : nullptr, &planned.imageProblem,
          nullptr};
}

/// What a rule looks at: the pod, and the container unless the rule is pod-level.
struct Target {
  const admission::PodSpec& pod;
  const Subject* subject = nullptr;
  OnFetchError onFetchError = OnFetchError::kDeny;
};

inline Finding pass() { return {}; }

inline Finding fail(std::string message, std::string remediation) {
  return {RuleStatus::kFail, std::move(message), std::move(remediation), {}};
}

/// A rule that needs registry facts it does not have: the policy's onFetchError decides.
Finding unresolved(const Target& target, const std::string& why);

/// Runs `rule` on the parsed image, or reports that the image cannot be judged.
Finding withImage(const Target& target, const std::function<Finding(const image::ImageRef&)>& rule);

/// Runs `rule` on the image's registry facts, or applies onFetchError when there are none.
Finding withFacts(const Target& target,
                  const std::function<Finding(const image::ImageFacts&)>& rule);

/// A field of the pod spec as a path in the reviewed object, e.g. spec.template.spec.hostPID.
std::string podField(const admission::PodSpec& pod, std::string_view field);

/// The image as written and, when normalization changed it, as it will be pulled.
std::string describeImage(const Subject& subject);

/// "a, b, c"
std::string joinPatterns(const std::vector<std::string>& patterns);

template <typename Matcher>
bool anyMatches(const std::vector<std::string>& patterns, std::string_view text, Matcher matcher) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& pattern) { return matcher(pattern, text); });
}

/// A securityContext field resolved the way the kubelet does: the container's value wins.
template <typename T>
struct Effective {
  std::optional<T> value;
  bool fromPod = false;
};

template <typename T>
Effective<T> effective(const std::optional<T>& containerValue, const std::optional<T>& podValue) {
  if (containerValue) return {containerValue, false};
  return {podValue, podValue.has_value()};
}

// Readers of common body shapes.

/// Reads `{allowed: bool}`; absent or null means not allowed.
bool readAllowed(const Fields& rule, std::string_view key);

/// Rule types without options accept `{}` or null and report any field.
template <typename Check>
std::shared_ptr<const RuleCheck> readEmptyBody(const Fields& rule, std::string_view key) {
  (void)rule.sub(key, Fields::Keys{});
  return std::make_shared<const Check>();
}

/// Rule types whose body is `{allowed: bool}`.
template <typename Check>
std::shared_ptr<const RuleCheck> readAllowedBody(const Fields& rule, std::string_view key) {
  return std::make_shared<const Check>(readAllowed(rule, key));
}

// The families, each defined in its own file; ruleTypes() lists them in this order.
std::vector<RuleType> containerSecurityRuleTypes();  // rules/container_security.cc
std::vector<RuleType> imageReferenceRuleTypes();     // rules/image_reference.cc
std::vector<RuleType> podRuleTypes();                // rules/pod.cc
std::vector<RuleType> imageFactsRuleTypes();         // rules/image_facts.cc
std::vector<RuleType> podSecurityRuleTypes();        // rules/pod_security.cc
std::vector<RuleType> imageFilesRuleTypes();         // rules/image_files.cc

}  // namespace imagegate::policy
