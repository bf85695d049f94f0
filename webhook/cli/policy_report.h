#pragma once

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/audit.h"

// `imagegate audit --output policyreport`: the audit as wgpolicyk8s.io/v1alpha2 PolicyReport
// objects (the Kubernetes Policy working group's report format, which Kyverno, Kubewarden,
// Trivy Operator and Policy Reporter read and show), printed as one v1 List that
// `kubectl apply -f -` accepts. The mapping is in README.md ("Auditing a cluster").
namespace imagegate::cli::audit {

/// The name of the report of namespace `ns`: "imagegate-<ns>"; the cluster-scoped one (objects
/// without a namespace) is "imagegate-cluster".
std::string policyReportName(const std::string& ns);

/// A `List` of one PolicyReport per namespace with results, sorted by namespace, and a
/// ClusterPolicyReport for the objects without one (manifests that name no namespace, documents
/// that could not be read) when there are any. Each result is one (workload, policy, rule):
/// fail, warn, error or pass; `now` is every result's timestamp.
nlohmann::json renderPolicyReports(const Report& report, std::chrono::system_clock::time_point now);

}  // namespace imagegate::cli::audit
