#include "policy/rule.h"

#include "policy/rules/rule_support.h"

namespace imagegate::policy {

bool isNamedUser(std::string_view user) {
  const std::string_view name = user.substr(0, user.find(':'));
  return !name.empty() && name != "root" &&
         name.find_first_not_of("0123456789") != std::string_view::npos;
}

const std::vector<RuleType>& ruleTypes() {
  // Assembled on first use from each family's list: no registration at static initialization.
  static const std::vector<RuleType> types = [] {
    std::vector<RuleType> all;
    for (auto family : {containerSecurityRuleTypes, imageReferenceRuleTypes, podRuleTypes,
                        imageFactsRuleTypes, imageFilesRuleTypes, podSecurityRuleTypes}) {
      const std::vector<RuleType> entries = family();
      all.insert(all.end(), entries.begin(), entries.end());
    }
    return all;
  }();
  return types;
}

}  // namespace imagegate::policy
