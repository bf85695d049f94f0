#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/error.h"

// Problems found while loading a configuration file (policies, the registry config), reported all
// at once so that an operator fixes a file in one round instead of one error per run.
namespace imagegate {

/// One problem found while loading, located in its file.
struct LoadProblem {
  std::string file;
  int line = 0;    ///< 1-based; 0 when unknown.
  int column = 0;  ///< 1-based; 0 when unknown.
  std::string message;

  /// "file:line:column: message"
  std::string str() const;
};

/// Writes str(); test failures then show the location instead of bytes.
std::ostream& operator<<(std::ostream& out, const LoadProblem& problem);

/// Thrown when a file fails to load; carries every problem found, not just the first. what() is
/// every problem's str(), one per line.
class LoadError : public Error {
 public:
  explicit LoadError(std::vector<LoadProblem> problems);
  const std::vector<LoadProblem>& problems() const { return problems_; }

 private:
  std::vector<LoadProblem> problems_;
};

}  // namespace imagegate
