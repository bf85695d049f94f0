#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admission/review.h"
#include "image/image_facts.h"
#include "policy/model.h"
#include "policy/rule.h"

// A review plan: the object parsed once for every policy and rule. It lists the containers with
// their parsed image references, the policies that apply and the containers each one selects, and
// per image which facts the matching rules will consult. The caller fetches what `images` asks
// for (cache, then registry) and hands the facts to evaluate(); nothing is parsed or matched twice.
namespace imagegate::policy {

/// A container with its image reference parsed once.
struct PlannedContainer {
  const admission::Container* container = nullptr;
  std::optional<image::ImageRef> image;
  std::string imageProblem;  ///< InvalidReference message when `image` is unset.
  std::string reference;     ///< image->str(), which every policy's image globs match against.
};

/// A policy that applies to the object, with the containers whose images it selects.
struct PlannedPolicy {
  const Policy* policy = nullptr;
  std::vector<std::size_t> containers;  ///< Indexes into ReviewPlan::containers.
};

/// Which rules a plan runs: all of them on a pod, only the image-level ones on a bare image.
enum class PlanScope { kPod, kImageOnly };

/// Everything evaluate() needs except image facts. Points into the reviewed object and the
/// policy set, which must outlive it; a plan for a bare image owns its stand-in pod.
struct ReviewPlan {
  PlanScope scope = PlanScope::kPod;
  const admission::PodSpec* pod = nullptr;             ///< Null: no pod spec, nothing to evaluate.
  std::shared_ptr<const admission::PodSpec> ownedPod;  ///< Set by planImage() only.
  std::vector<PlannedContainer> containers;
  std::vector<PlannedPolicy> policies;
  /// The facts each image must come with, for every image some matching rule consults.
  std::map<image::ImageRef, FactNeeds> images;
};

/// True when `policy` applies to an object in `namespaceName` with the object's labels
/// (namespace globs and objectSelector). Image globs are applied per container by the planner.
bool policyMatchesObject(const Policy& policy, const admission::ReviewedObject& object,
                         std::string_view namespaceName);

/// Plans the review of `object` (a Pod or a workload with a pod template) in `namespaceName`.
ReviewPlan planReview(const PolicySet& policies, const admission::ReviewedObject& object,
                      std::string_view namespaceName);

/// Plans the image-level rules (registries, reference, size, the image's USER) of every policy
/// whose image globs select `image`, with no pod around it: what `imagegate check` runs.
ReviewPlan planImage(const PolicySet& policies, const image::ImageRef& image);

}  // namespace imagegate::policy
