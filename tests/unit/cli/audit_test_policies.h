#pragma once

#include <memory>

#include "policy/loader.h"
#include "policy/model.h"

// The policies the audit tests judge made-up objects with. Enforced: no privileged containers,
// a UID set in the spec (runAsNonRoot needs the image config unless the spec sets one). Audited:
// read-only root filesystems.
namespace imagegate::cli::audit::fixtures {

constexpr const char* kPolicies = R"(apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: baseline}
spec:
  action: Enforce
  rules:
    - name: no-privileged
      privileged: {allowed: false}
    - name: non-root
      runAsNonRoot: {}
---
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: hardening}
spec:
  action: Audit
  rules:
    - name: read-only-root
      readOnlyRootFilesystem: {}
)";

inline std::shared_ptr<const policy::PolicySet> policies() {
  return std::make_shared<const policy::PolicySet>(
      policy::loadPoliciesFromString(kPolicies, "test-policies.yaml"));
}

}  // namespace imagegate::cli::audit::fixtures
