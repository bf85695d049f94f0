#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "admission/review.h"

// The checks of the Kubernetes Pod Security Standards, ported from Pod Security Admission
// (k8s.io/pod-security-admission/policy/check_*.go): the same check ids, versions, overrides
// and messages, so that a verdict here is the verdict PSA gives. Internal to rules/: the
// podSecurity rule (pod_security.cc) reads its body and reports what evaluate() finds.
namespace imagegate::policy::pss {

enum class Level { kBaseline, kRestricted };

/// Policy versions are v1.<minor>; v1.0 is the oldest, kNewestMinor what `latest` means: the
/// newest MinimumVersion any check registers upstream (sysctls, v1.37).
constexpr int kNewestMinor = 37;

/// What one check forbids, in PSA's words: `reason (detail)`.
struct Forbidden {
  std::string reason;
  std::string detail;
};

struct Violation {
  std::string_view checkId;
  Forbidden forbidden;
};

/// Every check id, baseline first, in the order PSA reports them.
std::vector<std::string_view> checkIds();

/// The checks of `level` at v1.`minor` that fail on `pod`, skipping the ids in `exclude`.
/// At restricted, a restricted check replaces the baseline check it overrides upstream
/// (restrictedVolumes replaces hostPathVolumes, ...) unless it is itself excluded.
std::vector<Violation> evaluate(Level level, int minor, const admission::PodSpec& pod,
                                const std::set<std::string, std::less<>>& exclude);

}  // namespace imagegate::policy::pss
