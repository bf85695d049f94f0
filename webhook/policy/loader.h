#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "policy/load_problem.h"
#include "policy/model.h"

namespace imagegate::policy {

/// Loads a policy file (possibly several YAML documents) or every *.yaml / *.yml file of a
/// directory (not recursive, sorted by name). Unknown fields, wrong types, bad globs, unknown
/// rule types, rules without exactly one type, and duplicate policy names are errors.
PolicySet loadPolicies(const std::filesystem::path& path);

/// Loads policies from YAML text; `sourceName` is used in problems and Policy::sourceFile.
PolicySet loadPoliciesFromString(std::string_view yaml, const std::string& sourceName);

}  // namespace imagegate::policy
