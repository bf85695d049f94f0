#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/yaml_fields.h"
#include "policy/load_problem.h"

// The policy loader's names for the shared strict YAML field reader (common/yaml_fields.h), and
// the helpers only policies need.
namespace imagegate::policy {

using imagegate::describeType;
using imagegate::Diagnostics;
using imagegate::Fields;
using imagegate::indexed;
using imagegate::joinWords;
using imagegate::Scalar;

/// Glob list: each entry checked with globProblem. `emptyMeans` names the effect of `[]` when an
/// empty list is surely a mistake; empty when `[]` is fine.
std::optional<std::vector<std::string>> readGlobs(const Fields& fields, std::string_view key,
                                                  std::string_view emptyMeans = {});

}  // namespace imagegate::policy
