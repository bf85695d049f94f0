#include "cli/sarif.h"

namespace imagegate::cli {
namespace {

using nlohmann::json;
using policy::RuleResult;
using policy::RuleStatus;

constexpr const char* kSchema = "https://json.schemastore.org/sarif-2.1.0.json";

std::string ruleId(const RuleResult& r) { return r.policy + "/" + r.rule; }

std::string levelFor(policy::Action action) {
  return action == policy::Action::kEnforce ? "error" : "warning";
}

/// The level a finding is reported at; a rule allowed by onFetchError: Allow only warns.
std::string levelFor(const RuleResult& r) {
  return r.status == RuleStatus::kWarning ? "warning" : levelFor(r.action);
}

const policy::Rule* findRule(const policy::PolicySet* policies, const RuleResult& r) {
  if (policies == nullptr) return nullptr;
  for (const policy::Policy& policy : policies->policies) {
    if (policy.name != r.policy) continue;
    for (const policy::Rule& rule : policy.rules) {
      if (rule.name == r.rule) return &rule;
    }
  }
  return nullptr;
}

json ruleDescriptor(const RuleResult& r, const policy::Rule* rule) {
  std::string description = "rule " + r.rule + " of policy " + r.policy;
  if (rule != nullptr && rule->type != nullptr) {
    description += " (" + std::string(rule->type->key) + "): " + std::string(rule->type->summary);
  }
  return {{"id", ruleId(r)},
          {"name", r.rule},
          {"shortDescription", {{"text", description}}},
          {"defaultConfiguration", {{"level", levelFor(r.action)}}},
          {"properties",
           {{"policy", r.policy},
            {"action", std::string(policy::actionName(r.action))},
            {"ruleType", rule != nullptr && rule->type != nullptr ? std::string(rule->type->key)
                                                                  : std::string()}}}};
}

json logicalLocation(const SarifSubject& subject) {
  return json::array(
      {{{"name", subject.name}, {"fullyQualifiedName", subject.name}, {"kind", subject.kind}}});
}

std::string messageText(const RuleResult& r) {
  std::string text = r.message.empty() ? "rule " + ruleId(r) + " is not satisfied" : r.message;
  if (!r.remediation.empty()) text += " Fix: " + r.remediation;
  return text;
}

json locationsFor(const SarifSubject& subject, const RuleResult& r) {
  json locations = json::array();
  for (const policy::FileFinding& file : r.files) {
    json properties = {{"layerIndex", file.layer}, {"layerDigest", file.layerDigest}};
    if (!file.history.empty()) properties["history"] = file.history;
    if (!file.detail.empty()) properties["detail"] = file.detail;
    locations.push_back({{"physicalLocation", {{"artifactLocation", {{"uri", file.path}}}}},
                         {"logicalLocations", logicalLocation(subject)},
                         {"properties", std::move(properties)}});
  }
  if (locations.empty()) {
    json location = {{"logicalLocations", logicalLocation(subject)}};
    if (!subject.sourcePath.empty()) {
      location["physicalLocation"] = {{"artifactLocation", {{"uri", subject.sourcePath}}}};
    }
    locations.push_back(std::move(location));
  }
  return locations;
}

}  // namespace

json sarifLog(const SarifTool& tool, const std::vector<SarifSubject>& subjects,
              const policy::PolicySet* policies) {
  json rules = json::array();
  std::map<std::string, std::size_t> ruleIndex;
  json results = json::array();
  json notifications = json::array();
  for (const SarifSubject& subject : subjects) {
    if (!subject.error.empty()) {
      notifications.push_back(
          {{"level", "error"},
           {"message", {{"text", subject.error}}},
           {"locations", json::array({{{"logicalLocations", logicalLocation(subject)}}})}});
    }
    for (std::size_t i = 0; i < subject.results.size(); ++i) {
      const RuleResult& r = subject.results[i];
      const std::string id = ruleId(r);
      if (ruleIndex.count(id) == 0) {
        ruleIndex[id] = rules.size();
        rules.push_back(ruleDescriptor(r, findRule(policies, r)));
      }
      if (r.status == RuleStatus::kPass) continue;
      json properties = {{"policy", r.policy},
                         {"rule", r.rule},
                         {"action", std::string(policy::actionName(r.action))},
                         {subject.nameProperty, subject.name}};
      for (const auto& [key, value] : subject.properties) properties[key] = value;
      if (i < subject.resultProperties.size()) {
        for (const auto& [key, value] : subject.resultProperties[i]) properties[key] = value;
      }
      if (r.status == RuleStatus::kError || r.status == RuleStatus::kWarning) {
        properties["evaluated"] = false;  // the rule could not judge: no facts, bad reference
      }
      results.push_back({{"ruleId", id},
                         {"ruleIndex", ruleIndex[id]},
                         {"level", levelFor(r)},
                         {"message", {{"text", messageText(r)}}},
                         {"locations", locationsFor(subject, r)},
                         {"properties", std::move(properties)}});
    }
  }
  json driver = {{"name", tool.name}, {"rules", std::move(rules)}};
  if (!tool.version.empty()) driver["version"] = tool.version;
  if (!tool.informationUri.empty()) driver["informationUri"] = tool.informationUri;
  json invocation = {{"executionSuccessful", notifications.empty()}};
  if (!notifications.empty()) invocation["toolExecutionNotifications"] = std::move(notifications);
  json run = {{"tool", {{"driver", std::move(driver)}}},
              {"invocations", json::array({std::move(invocation)})},
              {"results", std::move(results)},
              {"columnKind", "unicodeCodePoints"}};
  return {{"$schema", kSchema}, {"version", "2.1.0"}, {"runs", json::array({std::move(run)})}};
}

}  // namespace imagegate::cli
