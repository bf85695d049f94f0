#include "policy/plan.h"

#include "common/glob.h"
#include "image/reference_glob.h"
#include "policy/label_selector.h"
#include "policy/rules/rule_support.h"

namespace imagegate::policy {
namespace {

std::vector<PlannedContainer> parseImages(const admission::PodSpec& pod) {
  std::vector<PlannedContainer> containers;
  containers.reserve(pod.containers.size());
  for (const admission::Container& container : pod.containers) {
    PlannedContainer planned{&container, std::nullopt, "", ""};
    try {
      planned.image = image::parseImageRef(container.image);
      planned.reference = planned.image->str();
    } catch (const image::InvalidReference& e) {
      planned.imageProblem = e.what();
    }
    containers.push_back(std::move(planned));
  }
  return containers;
}

/// An unparsable image cannot be shown to be outside the policy, so it stays in scope (fail
/// closed) and the image rules report it as an error.
bool imageInScope(const Match& match, const PlannedContainer& container) {
  if (!container.image) return true;
  const std::string& reference = container.reference;
  return anyMatches(match.images, reference, image::imageGlobMatch) &&
         !anyMatches(match.excludeImages, reference, image::imageGlobMatch);
}

bool runsIn(const Rule& rule, PlanScope scope) {
  return scope == PlanScope::kPod || rule.type->level == RuleLevel::kImage;
}

/// Adds what the policy's container-level rules will consult about each selected image.
void addFactNeeds(const PlannedPolicy& planned, ReviewPlan& plan) {
  for (const Rule& rule : planned.policy->rules) {
    if (rule.type->level == RuleLevel::kPod || !runsIn(rule, plan.scope)) continue;
    for (const std::size_t index : planned.containers) {
      const PlannedContainer& container = plan.containers[index];
      if (!container.image) continue;
      const Subject subject = subjectOf(container);
      const FactNeeds needs = rule.check->needs(Target{*plan.pod, &subject});
      if (needs.any()) plan.images[*container.image] |= needs;
    }
  }
}

/// Adds `policy` when it selects any container; a pod none of whose images the policy selects is
/// not governed by it, pod-level rules included.
void addPolicy(const Policy& policy, ReviewPlan& plan) {
  PlannedPolicy planned{&policy, {}};
  planned.containers.reserve(plan.containers.size());  // one allocation, not one per doubling
  for (std::size_t i = 0; i < plan.containers.size(); ++i) {
    if (imageInScope(policy.match, plan.containers[i])) planned.containers.push_back(i);
  }
  if (planned.containers.empty()) return;
  addFactNeeds(planned, plan);
  plan.policies.push_back(std::move(planned));
}

}  // namespace

bool policyMatchesObject(const Policy& policy, const admission::ReviewedObject& object,
                         std::string_view namespaceName) {
  const std::string name(namespaceName);
  if (!anyMatches(policy.match.namespaces, name, globMatch) ||
      anyMatches(policy.match.excludeNamespaces, name, globMatch)) {
    return false;
  }
  return selectorMatches(policy.match.objectSelector, object.labels);
}

ReviewPlan planReview(const PolicySet& policies, const admission::ReviewedObject& object,
                      std::string_view namespaceName) {
  ReviewPlan plan;
  if (!object.podSpec) return plan;
  plan.pod = &*object.podSpec;
  plan.containers = parseImages(*plan.pod);
  plan.policies.reserve(policies.policies.size());
  for (const Policy& policy : policies.policies) {
    if (policyMatchesObject(policy, object, namespaceName)) addPolicy(policy, plan);
  }
  return plan;
}

ReviewPlan planImage(const PolicySet& policies, const image::ImageRef& image) {
  // A bare container with no securityContext: the image alone decides every image-level rule.
  auto pod = std::make_shared<admission::PodSpec>();
  admission::Container& container = pod->containers.emplace_back();
  container.name = image.str();
  container.image = image.str();
  ReviewPlan plan;
  plan.scope = PlanScope::kImageOnly;
  plan.ownedPod = pod;
  plan.pod = pod.get();
  plan.containers.push_back({&container, image, "", image.str()});
  for (const Policy& policy : policies.policies) addPolicy(policy, plan);
  return plan;
}

}  // namespace imagegate::policy
