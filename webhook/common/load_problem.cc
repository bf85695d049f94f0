#include "common/load_problem.h"

#include <ostream>
#include <utility>

namespace imagegate {
namespace {

std::string joinProblems(const std::vector<LoadProblem>& problems) {
  std::string text;
  for (const LoadProblem& problem : problems) {
    if (!text.empty()) text += "\n";
    text += problem.str();
  }
  return text;
}

}  // namespace

std::string LoadProblem::str() const {
  std::string text = file;
  if (line > 0) text += ":" + std::to_string(line);
  if (line > 0 && column > 0) text += ":" + std::to_string(column);
  return text + ": " + message;
}

std::ostream& operator<<(std::ostream& out, const LoadProblem& problem) {
  return out << problem.str();
}

LoadError::LoadError(std::vector<LoadProblem> problems)
    : Error(joinProblems(problems)), problems_(std::move(problems)) {}

}  // namespace imagegate
