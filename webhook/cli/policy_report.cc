#include "cli/policy_report.h"

#include <map>
#include <string_view>
#include <vector>

namespace imagegate::cli::audit {
namespace {

using nlohmann::json;
using policy::RuleStatus;

constexpr const char* kApiVersion = "wgpolicyk8s.io/v1alpha2";
constexpr const char* kSource = "imagegate";
// Documents that could not be read were checked by no policy; their error results need one.
constexpr const char* kInputPolicy = "imagegate-input";
constexpr const char* kInputRule = "readable-object";

/// How bad a failure of the rule is, by what its policy does with it: Enforce denies (high),
/// Warn shows the user a warning (medium), Audit only records it (low).
std::string_view severityOf(policy::Action action) {
  switch (action) {
    case policy::Action::kEnforce:
      return "high";
    case policy::Action::kWarn:
      return "medium";
    case policy::Action::kAudit:
      return "low";
  }
  return "high";
}

/// The PolicyReport result of a finding: error when the rule could not be evaluated, fail when an
/// Enforce rule fails, else warn (Audit and Warn policies, onFetchError: Allow).
std::string_view resultOf(const Finding& f) {
  if (f.status == RuleStatus::kError) return "error";
  if (f.status == RuleStatus::kFail && f.action == policy::Action::kEnforce) return "fail";
  return "warn";
}

int rank(std::string_view result) {
  if (result == "fail") return 3;
  if (result == "error") return 2;
  if (result == "warn") return 1;
  return 0;
}

json objectReference(const ObjectRef& ref) {
  json object = {{"apiVersion", ref.apiVersion}, {"kind", ref.kind}, {"name", ref.name}};
  if (!ref.namespaceName.empty()) object["namespace"] = ref.namespaceName;
  if (!ref.uid.empty()) object["uid"] = ref.uid;
  return object;
}

std::string subjectOf(const Finding& f) {
  if (f.container.empty()) return "pod";
  return f.containerKind + " \"" + f.container + "\"";
}

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

struct Timestamp {
  std::int64_t seconds = 0;
  std::int32_t nanos = 0;
};

class ReportBuilder {
 public:
  explicit ReportBuilder(Timestamp now) : now_(now) {}

  void addWorkload(const WorkloadReport& w) {
    json resources = json::array();
    if (!w.kind.empty() || !w.name.empty()) resources.push_back(objectReference(w.ref()));
    for (const ObjectRef& owned : w.reportedHereObjects) {
      resources.push_back(objectReference(owned));
    }
    if (!w.problem.empty()) {
      json result = base(kInputPolicy, kInputRule, "error", "could not be evaluated: " + w.problem,
                         resources);
      result["properties"] = sourceProperties(w);
      add(w.namespaceName, std::move(result));
      return;
    }
    for (const CheckedRule& checked : w.checked) {
      std::vector<const Finding*> findings;
      for (const Finding& f : w.findings) {
        if (f.policy == checked.policy && f.rule == checked.rule) findings.push_back(&f);
      }
      add(w.namespaceName, ruleResult(w, checked, findings, resources));
    }
  }

  json list() {
    json items = json::array();
    for (auto& [ns, results] : byNamespace_) {
      json summary = {{"pass", 0}, {"fail", 0}, {"warn", 0}, {"error", 0}, {"skip", 0}};
      for (const json& result : results) {
        summary[result["result"].get<std::string>()] =
            summary[result["result"].get<std::string>()].get<int>() + 1;
      }
      json metadata = {{"name", policyReportName(ns)},
                       {"labels", {{"app.kubernetes.io/managed-by", "imagegate"}}}};
      if (!ns.empty()) metadata["namespace"] = ns;
      items.push_back({{"apiVersion", kApiVersion},
                       {"kind", ns.empty() ? "ClusterPolicyReport" : "PolicyReport"},
                       {"metadata", std::move(metadata)},
                       {"results", std::move(results)},
                       {"summary", std::move(summary)}});
    }
    // The cluster-scoped report sorts first (""); kubectl users expect it last.
    if (!items.empty() && items[0]["kind"] == "ClusterPolicyReport") {
      json cluster = std::move(items[0]);
      items.erase(items.begin());
      items.push_back(std::move(cluster));
    }
    return {{"apiVersion", "v1"},
            {"kind", "List"},
            {"metadata", json::object()},
            {"items", std::move(items)}};
  }

 private:
  json base(const std::string& policy, const std::string& rule, std::string_view result,
            const std::string& message, const json& resources) const {
    json object = {{"policy", policy},
                   {"rule", rule},
                   {"result", result},
                   {"message", message},
                   {"source", kSource},
                   {"scored", true},
                   {"timestamp", {{"seconds", now_.seconds}, {"nanos", now_.nanos}}}};
    if (!resources.empty()) object["resources"] = resources;
    return object;
  }

  static json sourceProperties(const WorkloadReport& w) {
    json properties = {{"source", w.source}};
    if (w.document > 0) properties["document"] = std::to_string(w.document);
    return properties;
  }

  json ruleResult(const WorkloadReport& w, const CheckedRule& checked,
                  const std::vector<const Finding*>& findings, const json& resources) const {
    json properties = sourceProperties(w);
    properties["action"] = std::string(policy::actionName(checked.action));
    if (findings.empty()) {
      json result = base(checked.policy, checked.rule, "pass",
                         "rule " + checked.rule + " of policy " + checked.policy + " is satisfied",
                         resources);
      result["severity"] = severityOf(checked.action);
      result["properties"] = std::move(properties);
      return result;
    }
    std::string_view worst = "pass";
    std::string message;
    std::vector<std::string> containers;
    std::vector<std::string> images;
    for (const Finding* f : findings) {
      if (rank(resultOf(*f)) > rank(worst)) worst = resultOf(*f);
      message += (message.empty() ? "" : "; ") + subjectOf(*f) + ": " + f->message;
      if (!f->remediation.empty()) message += " Fix: " + f->remediation;
      if (!f->container.empty()) containers.push_back(f->container);
      if (!f->image.empty()) images.push_back(f->image);
    }
    if (!containers.empty()) properties["containers"] = joined(containers);
    if (!images.empty()) properties["images"] = joined(images);
    json result = base(checked.policy, checked.rule, worst, message, resources);
    result["severity"] = severityOf(checked.action);
    result["properties"] = std::move(properties);
    return result;
  }

  void add(const std::string& ns, json result) { byNamespace_[ns].push_back(std::move(result)); }

  Timestamp now_;
  std::map<std::string, std::vector<json>> byNamespace_;
};

}  // namespace

std::string policyReportName(const std::string& ns) {
  return ns.empty() ? "imagegate-cluster" : "imagegate-" + ns;
}

json renderPolicyReports(const Report& report, std::chrono::system_clock::time_point now) {
  const auto sinceEpoch = now.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(sinceEpoch);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(sinceEpoch - seconds);
  ReportBuilder builder(
      {static_cast<std::int64_t>(seconds.count()), static_cast<std::int32_t>(nanos.count())});
  for (const WorkloadReport& w : report.workloads) builder.addWorkload(w);
  return builder.list();
}

}  // namespace imagegate::cli::audit
