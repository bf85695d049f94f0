#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policy/evaluator.h"
#include "policy/model.h"

// SARIF 2.1.0 (the OASIS Static Analysis Results Interchange Format) for code-scanning UIs: one
// run whose tool.driver lists a rule per policy/rule evaluated, a result per finding. Shared by
// the commands that report rule results (`check`, `audit`).
namespace imagegate::cli {

struct SarifTool {
  std::string name = "imagegate";
  std::string version;
  std::string informationUri;
};

/// What was judged (an image, or a workload's container) and what the rules said about it.
struct SarifSubject {
  /// The logical location's name: the image reference judged, or "namespace/Kind/name/container".
  std::string name;
  /// SARIF logicalLocation kind; "resource" for images and workloads.
  std::string kind = "resource";
  /// Set for images read from disk (oci:DIR, docker-archive:FILE): the file or directory, as a
  /// URI reference, becomes the physical location of findings that have no file of their own.
  std::string sourcePath;
  std::map<std::string, std::string> properties;  ///< e.g. digest, source as written.
  /// The result property that names the subject: "image" (check), "workload" (audit).
  std::string nameProperty = "image";
  std::vector<policy::RuleResult> results;
  /// Extra properties of each result (its container's image, ...): empty, or one per result.
  std::vector<std::map<std::string, std::string>> resultProperties;
  /// Why the subject could not be judged (its image could not be fetched); reported as an error
  /// notification of the run, which is then not "executionSuccessful".
  std::string error;
};

/// The SARIF log. Passing rules appear in tool.driver.rules only; failed and unevaluated rules are
/// results, level "error" under Enforce and "warning" under Audit and Warn (and for rules allowed
/// by onFetchError: Allow), message text with the remediation. A file finding is a location of
/// its own: the path inside the image as artifactLocation.uri, its layer (index, digest, history)
/// in the location's properties. `policies`, when given, describes each rule by its type.
nlohmann::json sarifLog(const SarifTool& tool, const std::vector<SarifSubject>& subjects,
                        const policy::PolicySet* policies = nullptr);

}  // namespace imagegate::cli
