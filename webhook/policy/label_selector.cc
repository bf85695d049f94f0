#include "policy/label_selector.h"

#include <algorithm>
#include <cctype>

namespace imagegate::policy {
namespace {

using Operator = LabelSelectorRequirement::Operator;

constexpr std::size_t kMaxNameLength = 63;
constexpr std::size_t kMaxPrefixLength = 253;

bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

/// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], the shape of label names and values.
bool isQualifiedNamePart(std::string_view text) {
  return !text.empty() && isAlnum(text.front()) && isAlnum(text.back()) &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

/// A DNS-1123 subdomain: lowercase alphanumeric labels separated by dots.
bool isDnsSubdomain(std::string_view text) {
  const auto lowerAlnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (text.empty() || !lowerAlnum(text.front()) || !lowerAlnum(text.back())) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (lowerAlnum(c) || c == '-') continue;
    if (c == '.' && text[i - 1] != '.' && text[i - 1] != '-' && text[i + 1] != '-') continue;
    return false;
  }
  return true;
}

bool matches(const LabelSelectorRequirement& requirement,
             const std::map<std::string, std::string>& labels) {
  const auto it = labels.find(requirement.key);
  const bool present = it != labels.end();
  const auto listed = [&] {
    return present && std::find(requirement.values.begin(), requirement.values.end(), it->second) !=
                          requirement.values.end();
  };
  switch (requirement.op) {
    case Operator::kIn:
      return listed();
    case Operator::kNotIn:
      return !listed();
    case Operator::kExists:
      return present;
    case Operator::kDoesNotExist:
      return !present;
  }
  return false;
}

}  // namespace

bool selectorMatches(const LabelSelector& selector,
                     const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : selector.matchLabels) {
    const auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return std::all_of(selector.matchExpressions.begin(), selector.matchExpressions.end(),
                     [&](const LabelSelectorRequirement& r) { return matches(r, labels); });
}

std::optional<std::string> labelKeyProblem(std::string_view key) {
  const std::size_t slash = key.find('/');
  const std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (slash != std::string_view::npos) {
    const std::string_view prefix = key.substr(0, slash);
    if (prefix.size() > kMaxPrefixLength || !isDnsSubdomain(prefix)) {
      return "label key prefix \"" + std::string(prefix) +
             "\" must be a lowercase DNS subdomain such as example.com";
    }
  }
  if (name.size() > kMaxNameLength || !isQualifiedNamePart(name)) {
    return "label key \"" + std::string(key) +
           "\" must be [prefix/]name where name is 1-63 letters, digits, '-', '_' or '.', "
           "starting and ending with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> labelValueProblem(std::string_view value) {
  if (value.empty()) return std::nullopt;
  if (value.size() > kMaxNameLength || !isQualifiedNamePart(value)) {
    return "label value \"" + std::string(value) +
           "\" must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a "
           "letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> requirementProblem(const LabelSelectorRequirement& requirement) {
  if (auto problem = labelKeyProblem(requirement.key)) return problem;
  const bool needsValues = requirement.op == Operator::kIn || requirement.op == Operator::kNotIn;
  if (needsValues && requirement.values.empty()) {
    return "operators In and NotIn need at least one value";
  }
  if (!needsValues && !requirement.values.empty()) {
    return "operators Exists and DoesNotExist must not have values";
  }
  for (const std::string& value : requirement.values) {
    if (auto problem = labelValueProblem(value)) return problem;
  }
  return std::nullopt;
}

std::optional<LabelSelectorRequirement::Operator> parseSelectorOperator(std::string_view text) {
  if (text == "In") return Operator::kIn;
  if (text == "NotIn") return Operator::kNotIn;
  if (text == "Exists") return Operator::kExists;
  if (text == "DoesNotExist") return Operator::kDoesNotExist;
  return std::nullopt;
}

}  // namespace imagegate::policy
