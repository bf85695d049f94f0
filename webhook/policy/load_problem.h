#pragma once

#include <string>
#include <vector>

#include "common/error.h"

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

}  // namespace imagegate::policy
