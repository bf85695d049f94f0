#pragma once

#include "common/load_problem.h"

// The policy loader's names for the shared load problem types (common/load_problem.h).
namespace imagegate::policy {

using imagegate::LoadProblem;

/// Thrown when any policy fails to load. A type of its own so that code catching policy errors
/// does not also catch a registry config's LoadError.
class PolicyLoadError : public LoadError {
 public:
  using LoadError::LoadError;
};

}  // namespace imagegate::policy
