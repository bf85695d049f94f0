#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/evaluator.h"

// Findings of the rules that read only the image, kept between evaluations. A pod of ten
// containers whose images were seen before then runs none of those rules: evaluate() takes their
// findings from the memo. The interface lives here so that evaluation stays pure; the bounded
// implementation is cache/rule_result_cache.h.
namespace imagegate::policy {

/// What a rule concluded about its target, before the policy/rule/container are attached.
struct Finding {
  RuleStatus status = RuleStatus::kPass;
  std::string message;
  std::string remediation;
  std::vector<FileFinding> files;  ///< For rules on image content.
};

using Findings = std::vector<Finding>;

/// What FindingsMemo::findOrClaim found.
struct MemoLookup {
  std::shared_ptr<const Findings> findings;  ///< Null: the caller computes them.
  /// The caller computes the findings for every evaluation that needs them: it must store() or
  /// abandon() them, and others wait for it meanwhile.
  bool claimed = false;
};

/// Thread-safe store of findings by key, within one policy-set revision at a time.
class FindingsMemo {
 public:
  virtual ~FindingsMemo() = default;

  /// The findings stored under `key` for `revision` (none for any revision older than the
  /// newest one seen: its policies were replaced). So that a burst of reviews of one new image
  /// runs its rules once: when nothing is stored and nobody computes the findings, the caller
  /// claims them; when another caller does, this one waits for its findings (a bounded time) if
  /// `waitForOthers`, else gets none. Only a caller that holds no claim may wait: two
  /// evaluations must never wait for each other.
  virtual MemoLookup findOrClaim(std::uint64_t revision, std::string_view key,
                                 bool waitForOthers) = 0;

  /// Keeps `findings` under `key` for `revision`, ending a claim on it. A newer revision than any
  /// seen drops every finding of the older ones first; an older one is not kept.
  virtual void store(std::uint64_t revision, std::string key,
                     std::shared_ptr<const Findings> findings) = 0;

  /// Ends a claim without findings (the evaluation failed): whoever waits computes them.
  virtual void abandon(std::uint64_t revision, std::string_view key) = 0;
};

/// A memo and the revision of the policy set being evaluated. A revision names one immutable
/// PolicySet: whoever loads policies gives each set it loads a new, larger revision.
struct MemoScope {
  FindingsMemo* memo = nullptr;  ///< Null: every rule runs.
  std::uint64_t revision = 0;
};

}  // namespace imagegate::policy
