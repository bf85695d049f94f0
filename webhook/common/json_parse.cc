#include "common/json_parse.h"

namespace imagegate {

std::optional<nlohmann::json> tryParseJson(std::string_view text, JsonProblem& problem) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    problem.byte = e.byte;
    problem.reason = e.what();
  } catch (const nlohmann::json::exception& e) {
    problem.reason = e.what();
  }
  const auto prefixEnd = problem.reason.find("] ");
  if (prefixEnd != std::string::npos) problem.reason.erase(0, prefixEnd + 2);
  return std::nullopt;
}

}  // namespace imagegate
