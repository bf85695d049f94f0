#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admission/review.h"
#include "image/file_index.h"
#include "image/image_facts.h"
#include "policy/model.h"
#include "policy/plan.h"

// Pure evaluation of a review plan: no I/O, deterministic, safe to call from many threads at once.
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
  /// The merged root filesystem, when a rule needed files and every layer could be read. Shared:
  /// the fetcher caches it by manifest digest.
  std::shared_ptr<const image::MergedFilesystem> files;
  /// Why `files` is empty although facts are there (a layer that failed, the deadline), naming
  /// the image and the layer.
  std::string filesError;
  /// Layers whose files were not judged (foreign layers are never fetched), for messages.
  std::string filesNote;
};

/// Image facts keyed by the image to pull.
using ImageFactsMap = std::map<image::ImageRef, ImageLookup>;

/// A file a rule on image content points at, for reports (`imagegate check --output json`).
struct FileFinding {
  std::string path;       ///< As the container sees it, e.g. "/bin/sh".
  std::size_t layer = 0;  ///< Index in the manifest's layers, 0 first.
  std::string layerDigest;
  std::string history;  ///< The layer's created_by line, "" when the history has none.
  std::string detail;   ///< What is wrong with it when the path does not say: "setuid", ...
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
  /// What to change, e.g. "set securityContext.runAsUser to a non-zero UID".
  std::string remediation;
  /// The files concerned, for rules on image content (the first hundred).
  std::vector<FileFinding> files;
};

struct MemoScope;  // policy/findings_memo.h

/// Runs every rule of the plan's policies: pod-level rules once, the others on each container
/// the policy selects (image-level rules only, for a plan of a bare image). Returns one RuleResult
/// per (policy, rule, container) checked. A rule that needs facts missing from `facts` is judged
/// by the policy's onFetchError. With a memo, rules that read only the image take their findings
/// from it when that image was evaluated before under the same revision, and leave them there
/// otherwise: the results are the same either way.
std::vector<RuleResult> evaluate(const ReviewPlan& plan, const ImageFactsMap& facts = {});
std::vector<RuleResult> evaluate(const ReviewPlan& plan, const ImageFactsMap& facts,
                                 const MemoScope& memo);

/// planReview() then evaluate(): for callers that have the facts already (tests, audits of
/// objects whose rules need no facts).
std::vector<RuleResult> evaluate(const PolicySet& policies, const admission::ReviewedObject& object,
                                 std::string_view namespaceName, const ImageFactsMap& facts = {});

}  // namespace imagegate::policy
