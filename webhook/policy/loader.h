#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "policy/model.h"

namespace imagegate::policy {

/// One problem found while loading, located in its file.
struct LoadProblem {
  std::string file;
  int line = 0;    ///< 1-based; 0 when unknown.
  int column = 0;  ///< 1-based; 0 when unknown.
  std::string message;

  /// "file:line:column: message"
  std::string str() const;
};

/// Thrown when any policy fails to load; carries every problem found, not just the first.
class PolicyLoadError : public Error {
 public:
  explicit PolicyLoadError(std::vector<LoadProblem> problems);
  const std::vector<LoadProblem>& problems() const { return problems_; }

 private:
  std::vector<LoadProblem> problems_;
};

/// Loads a policy file (possibly several YAML documents) or every *.yaml / *.yml file of a
/// directory (not recursive, sorted by name). Unknown fields, wrong types, bad globs, unknown
/// rule types, rules without exactly one type, and duplicate policy names are errors.
PolicySet loadPolicies(const std::filesystem::path& path);

/// Loads policies from YAML text; `sourceName` is used in problems and Policy::sourceFile.
PolicySet loadPoliciesFromString(std::string_view yaml, const std::string& sourceName);

}  // namespace imagegate::policy
