#include "cli/audit.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <utility>

#include "admission/review.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/json_depth.h"

namespace imagegate::cli::audit {
namespace {

using nlohmann::json;
using policy::RuleResult;
using policy::RuleStatus;

// Owner chains are short (Pod -> ReplicaSet -> Deployment); this only stops a cycle.
constexpr int kMaxOwnerDepth = 8;
// Owned objects named after a workload in the table; the JSON report lists them all.
constexpr std::size_t kReportedHereShown = 3;

std::string text(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& metadataOf(const json& object) {
  static const json empty = json::object();
  const auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? *it : empty;
}

/// "apps/v1" -> {"apps", "v1"}; "v1" -> {"", "v1"}.
std::pair<std::string, std::string> groupVersion(const std::string& apiVersion) {
  const std::size_t slash = apiVersion.find('/');
  if (slash == std::string::npos) return {"", apiVersion};
  return {apiVersion.substr(0, slash), apiVersion.substr(slash + 1)};
}

/// The AdmissionReview the API server would send for creating `object`.
std::string reviewFor(const json& object, std::size_t index) {
  const auto [group, version] = groupVersion(text(object, "apiVersion"));
  const json& metadata = metadataOf(object);
  json request = {
      {"uid", "audit-" + std::to_string(index)},
      {"kind", {{"group", group}, {"version", version}, {"kind", text(object, "kind")}}},
      {"namespace", text(metadata, "namespace")},
      {"name", text(metadata, "name")},
      {"operation", "CREATE"},
      {"userInfo", {{"username", "imagegate-audit"}}},
      {"object", object}};
  return json{{"apiVersion", "admission.k8s.io/v1"},
              {"kind", "AdmissionReview"},
              {"request", std::move(request)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

struct OwnerRef {
  std::string kind;
  std::string name;
  std::string uid;
};

/// The controller among the ownerReferences (the one that created the object), else the first.
std::optional<OwnerRef> controllerOf(const json& metadata) {
  const auto refs = metadata.find("ownerReferences");
  if (refs == metadata.end() || !refs->is_array() || refs->empty()) return std::nullopt;
  const json* chosen = nullptr;
  for (const json& ref : *refs) {
    if (!ref.is_object()) continue;
    if (chosen == nullptr) chosen = &ref;
    const auto controller = ref.find("controller");
    if (controller != ref.end() && controller->is_boolean() && controller->get<bool>()) {
      chosen = &ref;
      break;
    }
  }
  if (chosen == nullptr) return std::nullopt;
  return OwnerRef{text(*chosen, "kind"), text(*chosen, "name"), text(*chosen, "uid")};
}

Verdict verdictOf(const RuleResult& result) {
  if (result.status == RuleStatus::kWarning) return Verdict::kWarn;  // onFetchError: Allow
  return result.action == policy::Action::kEnforce ? Verdict::kDeny : Verdict::kWarn;
}

std::string imageOf(const policy::ReviewPlan& plan, const RuleResult& result) {
  if (!result.container) return "";
  for (const policy::PlannedContainer& planned : plan.containers) {
    const admission::Container& container = *planned.container;
    if (container.name == *result.container && container.kind == result.containerKind) {
      return container.image;
    }
  }
  return "";
}

std::vector<Finding> findingsOf(const policy::ReviewPlan& plan,
                                const std::vector<RuleResult>& results) {
  std::vector<Finding> findings;
  for (const RuleResult& r : results) {
    if (r.status == RuleStatus::kPass) continue;
    Finding finding;
    finding.policy = r.policy;
    finding.rule = r.rule;
    finding.action = r.action;
    finding.status = r.status;
    finding.verdict = verdictOf(r);
    finding.container = r.container.value_or("");
    if (r.containerKind) finding.containerKind = std::string(admission::describe(*r.containerKind));
    finding.image = imageOf(plan, r);
    finding.message =
        r.status == RuleStatus::kError ? "could not be evaluated: " + r.message : r.message;
    finding.remediation = r.remediation;
    findings.push_back(std::move(finding));
  }
  return findings;
}

/// Each (policy, rule) of `results` once, in order.
std::vector<CheckedRule> checkedRules(const std::vector<RuleResult>& results) {
  std::vector<CheckedRule> checked;
  std::set<std::pair<std::string, std::string>> seen;
  for (const RuleResult& r : results) {
    if (seen.insert({r.policy, r.rule}).second) checked.push_back({r.policy, r.rule, r.action});
  }
  return checked;
}

/// What makes two findings the same problem, whether found on a pod or on its owner's template:
/// not the message, which may name the object's own field paths.
std::string sameProblemKey(const Finding& f) {
  return f.policy + '\n' + f.rule + '\n' + f.containerKind + '\n' + f.container + '\n' +
         std::string(verdictName(f.verdict));
}

std::string kindName(const WorkloadReport& w) { return w.kind + "/" + w.name; }

std::string namespacedKey(const std::string& ns, const std::string& kind, const std::string& name) {
  return ns + '\n' + kind + '\n' + name;
}

}  // namespace

json parseInput(std::string_view input, const std::string& source, std::size_t maxDepth) {
  if (checkJsonShape(input, maxDepth) == JsonShape::kTooDeep) {
    throw Error(source + ": JSON nested deeper than " + std::to_string(maxDepth) + " levels");
  }
  // managedFields sits at metadata.managedFields of every object: depth 2 in a lone object,
  // depth 4 in a List's item. Dropping it while parsing halves the memory a List costs.
  const json::parser_callback_t dropManagedFields = [](int depth, json::parse_event_t event,
                                                       json& parsed) {
    return !(event == json::parse_event_t::key && (depth == 2 || depth == 4) &&
             parsed == "managedFields");
  };
  json document;
  try {
    document = json::parse(input, dropManagedFields, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    std::string reason = e.what();
    if (const std::size_t end = reason.find("] "); end != std::string::npos) {
      reason = reason.substr(end + 2);
    }
    throw Error(source + " is not JSON (what kubectl get -o json prints): " + reason);
  }
  return document;
}

std::vector<json> objectsOf(json document, const std::string& source) {
  if (!document.is_object()) {
    throw Error(source + ": expected a Kubernetes object or a List of them, got a JSON " +
                document.type_name());
  }
  const std::string kind = text(document, "kind");
  const auto items = document.find("items");
  const bool isList = kind == "List" || (kind.size() > 4 && kind.ends_with("List"));
  if (!isList) {
    if (kind.empty()) throw Error(source + ": the object has no kind");
    return {std::move(document)};
  }
  if (items == document.end() || !(items->is_array() || items->is_null())) {
    throw Error(source + ": " + kind + " has no items array");
  }
  std::vector<json> objects;
  if (items->is_null()) return objects;
  // A typed list (PodList) leaves kind and apiVersion out of its items.
  const std::string itemKind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
  const std::string listApiVersion = text(document, "apiVersion");
  for (json& item : *items) {
    if (!item.is_object()) throw Error(source + ": an item of the " + kind + " is not an object");
    if (!itemKind.empty() && text(item, "kind").empty()) item["kind"] = itemKind;
    if (!itemKind.empty() && text(item, "apiVersion").empty()) item["apiVersion"] = listApiVersion;
    objects.push_back(std::move(item));
  }
  return objects;
}

std::string_view verdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kClean:
      return "clean";
    case Verdict::kWarn:
      return "warn";
    case Verdict::kDeny:
      return "deny";
  }
  return "clean";
}

Verdict WorkloadReport::verdict() const {
  Verdict worst = Verdict::kClean;
  for (const Finding& f : findings) worst = std::max(worst, f.verdict);
  return worst;
}

std::string WorkloadReport::label() const {
  if (kind.empty() && name.empty()) {
    return source + (document > 0 ? " document " + std::to_string(document) : "");
  }
  return (namespaceName.empty() ? "" : namespaceName + "/") + kind + "/" + name;
}

ObjectRef WorkloadReport::ref() const { return {apiVersion, kind, namespaceName, name, uid}; }

std::size_t Report::count(Verdict verdict) const {
  return static_cast<std::size_t>(std::count_if(
      workloads.begin(), workloads.end(),
      [&](const WorkloadReport& w) { return w.problem.empty() && w.verdict() == verdict; }));
}

std::size_t Report::unreadable() const {
  return static_cast<std::size_t>(
      std::count_if(workloads.begin(), workloads.end(),
                    [](const WorkloadReport& w) { return !w.problem.empty(); }));
}

struct Auditor::Entry {
  WorkloadReport report;
  std::string uid;
  std::optional<OwnerRef> owner;
  admission::DecodedReview decoded;  ///< The plan points into it.
  policy::ReviewPlan plan;
  bool workload = false;  ///< Has a pod spec.
};

Auditor::Auditor(std::shared_ptr<const policy::PolicySet> policies)
    : policies_(std::move(policies)) {}
Auditor::~Auditor() = default;

void Auditor::addUnreadable(const std::string& source, std::size_t document,
                            const std::string& problem) {
  auto entry = std::make_unique<Entry>();
  entry->report.source = source;
  entry->report.document = document;
  entry->report.problem = problem;
  entry->workload = true;  // it may have been one: counted as unreadable, not as skipped
  entries_.push_back(std::move(entry));
}

void Auditor::add(const json& object, const std::string& source, std::size_t document) {
  auto entry = std::make_unique<Entry>();
  const json& metadata = metadataOf(object);
  entry->report.source = source;
  entry->report.document = document;
  entry->report.apiVersion = text(object, "apiVersion");
  entry->report.kind = text(object, "kind");
  entry->report.namespaceName = text(metadata, "namespace");
  entry->report.name = text(metadata, "name");
  entry->uid = text(metadata, "uid");
  entry->report.uid = entry->uid;
  entry->owner = controllerOf(metadata);
  try {
    entry->decoded = admission::decodeReview(reviewFor(object, entries_.size()));
  } catch (const admission::UnreadableReview& e) {
    entry->report.problem = e.what();
  }
  if (const auto* malformed = std::get_if<admission::MalformedRequest>(&entry->decoded.request)) {
    if (entry->report.problem.empty()) {
      entry->report.problem = malformed->problem;
      // decodeReview names fields from the review's root; the object's own path reads better.
      if (entry->report.problem.starts_with("request.object.")) {
        entry->report.problem = entry->report.problem.substr(15);
      }
    }
    entry->workload = true;
  } else if (entry->report.problem.empty()) {
    const auto& request = std::get<admission::AdmissionRequest>(entry->decoded.request);
    entry->workload = request.object && request.object->podSpec;
    if (entry->workload) {
      entry->plan = policy::planReview(*policies_, *request.object, request.namespaceName);
    }
  } else {
    entry->workload = true;
  }
  entries_.push_back(std::move(entry));
}

policy::ReviewPlan Auditor::imagesToFetch() const {
  policy::ReviewPlan wanted;
  for (const auto& entry : entries_) {
    for (const auto& [image, needs] : entry->plan.images) wanted.images[image] |= needs;
  }
  return wanted;
}

Report Auditor::evaluate(const policy::ImageFactsMap& facts) const {
  Report report;
  report.objects = entries_.size();
  std::vector<WorkloadReport> evaluated(entries_.size());
  std::map<std::string, std::size_t> byUid;
  std::map<std::string, std::size_t> byName;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& entry = *entries_[i];
    if (!entry.workload) {
      ++report.skipped[entry.report.kind.empty() ? "(no kind)" : entry.report.kind];
      continue;
    }
    evaluated[i] = entry.report;
    if (entry.report.problem.empty()) {
      const std::vector<RuleResult> results = policy::evaluate(entry.plan, facts);
      evaluated[i].findings = findingsOf(entry.plan, results);
      evaluated[i].checked = checkedRules(results);
    }
    if (!entry.uid.empty()) byUid[entry.uid] = i;
    byName[namespacedKey(entry.report.namespaceName, entry.report.kind, entry.report.name)] = i;
  }

  // The workload in the input at the top of `index`'s owner chain, if any.
  const auto ownerIndex = [&](std::size_t index) -> std::optional<std::size_t> {
    std::optional<std::size_t> top;
    std::size_t current = index;
    for (int depth = 0; depth < kMaxOwnerDepth && entries_[current]->owner; ++depth) {
      const OwnerRef& ref = *entries_[current]->owner;
      const auto uid = ref.uid.empty() ? byUid.end() : byUid.find(ref.uid);
      const auto named =
          byName.find(namespacedKey(entries_[current]->report.namespaceName, ref.kind, ref.name));
      if (uid != byUid.end()) {
        current = uid->second;
      } else if (named != byName.end() &&
                 (ref.uid.empty() || entries_[named->second]->uid.empty())) {
        // Objects without uids (manifests rather than what the API server returns) match by
        // name; with both uids known, a different uid is a different object of the same name.
        current = named->second;
      } else {
        break;
      }
      if (current == index) break;
      top = current;
    }
    return top;
  };

  std::vector<bool> folded(entries_.size(), false);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i]->workload || !evaluated[i].problem.empty()) continue;
    const auto owner = ownerIndex(i);
    if (!owner || !evaluated[*owner].problem.empty()) continue;
    std::set<std::string> ownersProblems;
    for (const Finding& f : evaluated[*owner].findings) ownersProblems.insert(sameProblemKey(f));
    std::vector<Finding> beyondOwner;
    for (Finding& f : evaluated[i].findings) {
      if (!ownersProblems.contains(sameProblemKey(f))) beyondOwner.push_back(std::move(f));
    }
    evaluated[i].findings = std::move(beyondOwner);
    if (evaluated[i].findings.empty()) {
      folded[i] = true;
      evaluated[*owner].reportedHere.push_back(kindName(evaluated[i]));
      evaluated[*owner].reportedHereObjects.push_back(evaluated[i].ref());
      ++report.reportedThroughOwner;
    } else {
      evaluated[i].owner = kindName(evaluated[*owner]);
      // Its other rules are its owner's results; only these are its own.
      std::set<std::pair<std::string, std::string>> own;
      for (const Finding& f : evaluated[i].findings) own.insert({f.policy, f.rule});
      std::erase_if(evaluated[i].checked, [&](const CheckedRule& c) {
        return !own.contains({c.policy, c.rule});
      });
    }
  }

  std::map<std::pair<std::string, std::string>, RuleTally> tallies;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i]->workload || folded[i]) continue;
    WorkloadReport& workload = evaluated[i];
    std::set<std::pair<std::string, std::string>> denied;
    std::set<std::pair<std::string, std::string>> warned;
    for (const Finding& f : workload.findings) {
      RuleTally& tally = tallies[{f.policy, f.rule}];
      tally.policy = f.policy;
      tally.rule = f.rule;
      tally.action = f.action;
      (f.verdict == Verdict::kDeny ? denied : warned).insert({f.policy, f.rule});
    }
    for (const auto& key : denied) ++tallies[key].denied;
    for (const auto& key : warned) {
      if (!denied.contains(key)) ++tallies[key].warned;
    }
    report.workloads.push_back(std::move(workload));
  }
  for (auto& [key, tally] : tallies) report.byRule.push_back(std::move(tally));

  const policy::ReviewPlan wanted = imagesToFetch();
  for (const auto& [image, needs] : wanted.images) {
    const auto found = facts.find(image);
    if (found == facts.end()) {
      report.imagesNotFetched.push_back({image.str(), "not fetched"});
    } else if (!found->second.facts) {
      report.imagesNotFetched.push_back({image.str(), found->second.error});
    } else if (needs.files && !found->second.filesError.empty()) {
      report.imagesNotFetched.push_back({image.str(), found->second.filesError});
    }
  }
  return report;
}

namespace {

std::string subjectOf(const Finding& f) {
  if (f.container.empty()) return "pod";
  std::string subject = f.containerKind + " \"" + f.container + "\"";
  if (!f.image.empty()) subject += " (" + f.image + ")";
  return subject;
}

void printWorkload(std::ostringstream& out, const WorkloadReport& w) {
  if (!w.problem.empty()) {
    out << "ERROR " << w.label() << ": could not be evaluated: " << w.problem << "\n";
    return;
  }
  std::string verdict(verdictName(w.verdict()));
  std::transform(verdict.begin(), verdict.end(), verdict.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  out << verdict << std::string(6 - verdict.size(), ' ') << w.label();
  if (!w.owner.empty())
    out << "  (owned by " << w.owner << "; only findings its owner does not show)";
  if (!w.reportedHere.empty()) {
    out << "  (reported here for its " << w.reportedHere.size() << " owned object"
        << (w.reportedHere.size() == 1 ? "" : "s") << ": ";
    for (std::size_t i = 0; i < w.reportedHere.size() && i < kReportedHereShown; ++i) {
      out << (i == 0 ? "" : ", ") << w.reportedHere[i];
    }
    if (w.reportedHere.size() > kReportedHereShown) {
      out << " and " << w.reportedHere.size() - kReportedHereShown << " more";
    }
    out << ")";
  }
  out << "\n";
  for (const Finding& f : w.findings) {
    out << "  " << verdictName(f.verdict) << "  " << f.policy << "/" << f.rule << "  "
        << subjectOf(f) << "\n        " << f.message << "\n";
    if (!f.remediation.empty()) out << "        fix: " << f.remediation << "\n";
  }
}

std::string padded(std::string text, std::size_t width) {
  if (text.size() < width) text.resize(width, ' ');
  return text;
}

}  // namespace

std::string renderTable(const Report& report) {
  std::ostringstream out;
  for (const WorkloadReport& w : report.workloads) {
    if (w.problem.empty() && w.findings.empty()) continue;
    printWorkload(out, w);
  }
  if (out.tellp() > 0) out << "\n";
  std::string skippedKinds;
  for (const auto& [kind, n] : report.skipped) {
    skippedKinds += (skippedKinds.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  }
  out << "Summary: " << report.objects << " objects read, " << report.workloads.size()
      << " workloads reported";
  if (report.reportedThroughOwner > 0) {
    out << " (" << report.reportedThroughOwner
        << " more objects reported through their owners, not twice)";
  }
  out << ": " << report.count(Verdict::kClean) << " clean, " << report.count(Verdict::kDeny)
      << " with denials, " << report.count(Verdict::kWarn) << " with warnings only";
  if (report.unreadable() > 0) out << ", " << report.unreadable() << " unreadable";
  if (!skippedKinds.empty()) out << "; skipped, not workloads: " << skippedKinds;
  out << "\n";
  if (!report.byRule.empty()) {
    std::size_t width = 11;
    for (const RuleTally& t : report.byRule)
      width = std::max(width, t.policy.size() + t.rule.size() + 1);
    out << "\n" << padded("POLICY/RULE", width + 2) << "ACTION   DENIED  WARNED  (workloads)\n";
    for (const RuleTally& t : report.byRule) {
      std::string denied = std::to_string(t.denied);
      std::string warned = std::to_string(t.warned);
      out << padded(t.policy + "/" + t.rule, width + 2)
          << padded(std::string(policy::actionName(t.action)), 9)
          << std::string(6 - std::min<std::size_t>(6, denied.size()), ' ') << denied << "  "
          << std::string(6 - std::min<std::size_t>(6, warned.size()), ' ') << warned << "\n";
    }
  }
  if (!report.imagesNotFetched.empty()) {
    out << "\nImages whose facts could not be fetched (" << report.imagesNotFetched.size()
        << "; their rules were judged by each policy's onFetchError):\n";
    for (const ImageProblem& p : report.imagesNotFetched) {
      out << "  " << p.image << ": " << p.error << "\n";
    }
  }
  return out.str();
}

json renderJson(const Report& report) {
  json workloads = json::array();
  for (const WorkloadReport& w : report.workloads) {
    json findings = json::array();
    for (const Finding& f : w.findings) {
      findings.push_back({{"policy", f.policy},
                          {"rule", f.rule},
                          {"action", policy::actionName(f.action)},
                          {"result", verdictName(f.verdict)},
                          {"container", f.container},
                          {"containerKind", f.containerKind},
                          {"image", f.image},
                          {"message", f.message},
                          {"remediation", f.remediation}});
    }
    json entry = {{"source", w.source},
                  {"apiVersion", w.apiVersion},
                  {"kind", w.kind},
                  {"namespace", w.namespaceName},
                  {"name", w.name},
                  {"verdict", w.problem.empty() ? verdictName(w.verdict()) : "error"},
                  {"owner", w.owner},
                  {"reportedHere", w.reportedHere},
                  {"findings", std::move(findings)}};
    if (!w.problem.empty()) entry["problem"] = w.problem;
    if (w.document > 0) entry["document"] = w.document;
    workloads.push_back(std::move(entry));
  }
  json byRule = json::array();
  for (const RuleTally& t : report.byRule) {
    byRule.push_back({{"policy", t.policy},
                      {"rule", t.rule},
                      {"action", policy::actionName(t.action)},
                      {"denied", t.denied},
                      {"warned", t.warned}});
  }
  json images = json::array();
  for (const ImageProblem& p : report.imagesNotFetched) {
    images.push_back({{"image", p.image}, {"error", p.error}});
  }
  json skipped = json::object();
  for (const auto& [kind, n] : report.skipped) skipped[kind] = n;
  const json summary = {{"objects", report.objects},
                        {"workloads", report.workloads.size()},
                        {"reportedThroughOwner", report.reportedThroughOwner},
                        {"clean", report.count(Verdict::kClean)},
                        {"withDenials", report.count(Verdict::kDeny)},
                        {"withWarningsOnly", report.count(Verdict::kWarn)},
                        {"unreadable", report.unreadable()},
                        {"skipped", std::move(skipped)},
                        {"byRule", std::move(byRule)},
                        {"imagesNotFetched", std::move(images)}};
  return {{"apiVersion", "imagegate.dev/v1alpha1"},
          {"kind", "AuditReport"},
          {"summary", summary},
          {"workloads", std::move(workloads)}};
}

namespace {

/// A file path as a URI reference: unreserved characters and '/' kept, the rest percent-encoded.
std::string uriReference(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri;
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      uri += c;
    } else {
      uri += '%';
      uri += kHex[byte >> 4];
      uri += kHex[byte & 0xF];
    }
  }
  return uri;
}

SarifSubject sarifSubjectOf(const WorkloadReport& w) {
  SarifSubject subject;
  subject.name = w.label();
  subject.nameProperty = "workload";
  if (w.source != "stdin") subject.sourcePath = uriReference(w.source);
  subject.properties = {{"source", w.source}};
  if (w.document > 0) subject.properties["document"] = std::to_string(w.document);
  if (!w.kind.empty()) subject.properties["kind"] = w.kind;
  if (!w.namespaceName.empty()) subject.properties["namespace"] = w.namespaceName;
  if (!w.owner.empty()) subject.properties["owner"] = w.owner;
  std::string reportedHere;
  for (const std::string& owned : w.reportedHere) {
    reportedHere += (reportedHere.empty() ? "" : ", ") + owned;
  }
  if (!reportedHere.empty()) subject.properties["reportedHere"] = reportedHere;
  if (!w.problem.empty()) {
    subject.error = w.label() + ": could not be evaluated: " + w.problem;
    return subject;
  }
  for (const CheckedRule& checked : w.checked) {
    bool found = false;
    for (const Finding& f : w.findings) {
      if (f.policy != checked.policy || f.rule != checked.rule) continue;
      found = true;
      RuleResult r;
      r.policy = f.policy;
      r.rule = f.rule;
      r.action = f.action;
      r.status = f.status;
      if (!f.container.empty()) r.container = f.container;
      r.message = f.message;
      r.remediation = f.remediation;
      subject.results.push_back(std::move(r));
      std::map<std::string, std::string> properties;
      if (!f.container.empty()) {
        properties = {{"container", f.container}, {"containerKind", f.containerKind}};
      }
      if (!f.image.empty()) properties["containerImage"] = f.image;
      subject.resultProperties.push_back(std::move(properties));
    }
    if (!found) {  // listed in tool.driver.rules, no result
      RuleResult pass;
      pass.policy = checked.policy;
      pass.rule = checked.rule;
      pass.action = checked.action;
      subject.results.push_back(std::move(pass));
      subject.resultProperties.emplace_back();
    }
  }
  return subject;
}

}  // namespace

json renderSarif(const Report& report, const SarifTool& tool, const policy::PolicySet* policies) {
  std::vector<SarifSubject> subjects;
  for (const WorkloadReport& w : report.workloads) subjects.push_back(sarifSubjectOf(w));
  for (const ImageProblem& p : report.imagesNotFetched) {
    SarifSubject image;
    image.name = p.image;
    image.error = "the facts of image " + p.image + " could not be fetched: " + p.error +
                  " (its rules were judged by each policy's onFetchError)";
    subjects.push_back(std::move(image));
  }
  return sarifLog(tool, subjects, policies);
}

int exitCode(const Report& report) {
  if (report.count(Verdict::kDeny) > 0) return kExitViolations;
  if (report.unreadable() > 0) return kExitUsage;
  if (!report.imagesNotFetched.empty()) return kExitFetchFailed;
  return kExitOk;
}

}  // namespace imagegate::cli::audit
