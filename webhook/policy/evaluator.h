#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "admission/review.h"
#include "image/image_facts.h"
#include "policy/model.h"

// Pure evaluation: no I/O, deterministic, safe to call from many threads at once.
namespace imagegate::policy {

enum class RuleStatus {
  kPass,     ///< Checked and satisfied.
  kFail,     ///< Checked and violated.
  kError,    ///< Could not be evaluated (e.g. an image reference that does not parse).
  kWarning,  ///< Not evaluated, allowed by the policy's onFetchError: Allow; reported as a warning.
};

/// What the registry gave for one image: its facts, or why there are none.
struct ImageLookup {
  std::optional<image::ImageFacts> facts;
  std::string error;  ///< Set when facts is empty; names the image and the registry.
};

/// Image facts keyed by the normalized reference (image::ImageRef::str()).
using ImageFactsMap = std::map<std::string, ImageLookup>;

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

/// The normalized references whose facts some matching rule needs for this request: every image
/// under maxImageSize, and under runAsNonRoot the images of containers that set neither
/// runAsUser nor runAsNonRoot: true (the image's USER then decides).
std::set<std::string> imagesNeedingFacts(const PolicySet& policies,
                                         const admission::AdmissionRequest& request);

/// Evaluates every matching policy's rules on every matching container of the request's pod spec.
/// Returns one RuleResult per (policy, rule, container) that was checked; results for pod-level
/// rules have no container. A request without a pod spec yields no results. A rule that needs
/// facts missing from `facts` is judged by the policy's onFetchError.
std::vector<RuleResult> evaluate(const PolicySet& policies,
                                 const admission::AdmissionRequest& request,
                                 const ImageFactsMap& facts = {});

/// Evaluates only the image-level rules (registries, reference, size, the image's USER) of every
/// policy whose image globs select `image`, with no pod around it: what `imagegate check` runs.
std::vector<RuleResult> evaluateImage(const PolicySet& policies, const image::ImageRef& image,
                                      const ImageLookup& lookup);

}  // namespace imagegate::policy
