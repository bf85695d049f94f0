#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cli/sarif.h"
#include "policy/evaluator.h"
#include "policy/model.h"
#include "policy/plan.h"

// `imagegate audit`: the objects of a running cluster (what `kubectl get ... -A -o json` prints)
// reviewed as the webhook would review them on CREATE, and a report of what the policies would
// deny or warn. Each object goes through the webhook's own path: AdmissionReview decoding ->
// policy::planReview -> image facts -> policy::evaluate. No I/O here: the command fetches the
// facts (cli/audit_command.cc), so the folding and the report are testable with made-up facts.
namespace imagegate::cli::audit {

/// Parses one input (JSON text), dropping metadata.managedFields on the way: it is most of
/// what kubectl prints and no rule reads it. Throws Error naming `source` when the text is not
/// JSON or nests deeper than `maxDepth`.
nlohmann::json parseInput(std::string_view text, const std::string& source,
                          std::size_t maxDepth = 64);

/// The objects of one document: the items of a List (`kind: List`, or a typed `PodList`, ...) or
/// the document itself when it is one object. Throws Error naming `source` otherwise.
std::vector<nlohmann::json> objectsOf(nlohmann::json document, const std::string& source);

enum class Verdict { kClean, kWarn, kDeny };

/// "clean", "warn", "deny".
std::string_view verdictName(Verdict verdict);

/// One rule that did not pass on one container (or on the pod, for pod-level rules).
struct Finding {
  std::string policy;
  std::string rule;
  policy::Action action = policy::Action::kEnforce;
  /// kFail, or kError (could not be evaluated), or kWarning (not evaluated, onFetchError: Allow).
  policy::RuleStatus status = policy::RuleStatus::kFail;
  Verdict verdict = Verdict::kDeny;  ///< kDeny: an Enforce rule failed; kWarn otherwise.
  std::string container;             ///< "" for pod-level rules.
  std::string containerKind;         ///< "container", "init container", ...; "" for the pod.
  std::string image;                 ///< As written in the spec; "" for pod-level rules.
  std::string message;
  std::string remediation;
};

/// An object of the input, as a Kubernetes ObjectReference names it.
struct ObjectRef {
  std::string apiVersion;
  std::string kind;
  std::string namespaceName;
  std::string name;
  std::string uid;  ///< "" for manifests, which have none yet.
};

/// A rule some policy checked on an object, whatever the outcome.
struct CheckedRule {
  std::string policy;
  std::string rule;
  policy::Action action = policy::Action::kEnforce;
};

/// One object of the input as the report shows it.
struct WorkloadReport {
  std::string source;        ///< The input it came from: a file, or "stdin".
  std::size_t document = 0;  ///< 1-based index of its YAML document in `source`; 0 for JSON.
  std::string apiVersion;
  std::string kind;
  std::string namespaceName;
  std::string name;
  std::string uid;
  /// Set for an owned object (a Pod of a ReplicaSet, ...) whose owner is in the input but that
  /// has findings its owner does not show: "Deployment/web". Only those findings are listed.
  std::string owner;
  /// Objects reported through this one, their owner ("Pod/web-5d8f-x2"): their findings are all
  /// this one's.
  std::vector<std::string> reportedHere;
  std::vector<ObjectRef> reportedHereObjects;  ///< The same objects, in full.
  std::vector<Finding> findings;
  /// Every (policy, rule) checked on it, in evaluation order, passing or not; for an owned
  /// object listed with its own findings, only the rules of those.
  std::vector<CheckedRule> checked;
  std::string problem;  ///< Why it could not be evaluated (a malformed object); no findings then.

  Verdict verdict() const;
  /// "namespace/Kind/name" ("Kind/name" without a namespace); for a document that could not be
  /// read, "source document N".
  std::string label() const;
  ObjectRef ref() const;
};

/// Workloads of the report with a finding of (policy, rule), by verdict.
struct RuleTally {
  std::string policy;
  std::string rule;
  policy::Action action = policy::Action::kEnforce;
  std::size_t denied = 0;
  std::size_t warned = 0;
};

struct ImageProblem {
  std::string image;  ///< The normalized reference.
  std::string error;
};

struct Report {
  std::size_t objects = 0;  ///< Every object read.
  /// Objects that are not workloads (no pod spec, e.g. a Service), by kind: not evaluated.
  std::map<std::string, std::size_t> skipped;
  /// Owned objects whose findings are all their owner's: listed under it, not on their own.
  std::size_t reportedThroughOwner = 0;
  /// Evaluated objects not folded into an owner, in input order; clean ones included.
  std::vector<WorkloadReport> workloads;
  std::vector<RuleTally> byRule;               ///< Sorted by policy, then rule.
  std::vector<ImageProblem> imagesNotFetched;  ///< Images some rule needed facts of.

  std::size_t count(Verdict verdict) const;  ///< Readable workloads with that verdict.
  std::size_t unreadable() const;            ///< Workloads with a problem.
};

/// Decodes and plans objects, then evaluates them all once their images' facts are known.
class Auditor {
 public:
  explicit Auditor(std::shared_ptr<const policy::PolicySet> policies);
  ~Auditor();
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  /// Decodes `object` exactly as the webhook decodes an AdmissionReview's request.object on
  /// CREATE, and plans its review in its own namespace. Never throws on a malformed object: the
  /// report names its problem.
  void add(const nlohmann::json& object, const std::string& source, std::size_t document = 0);

  /// A document of the input that is not an object: a YAML or JSON syntax error, a list of
  /// numbers. The report counts it as an object that could not be read, with `problem`.
  void addUnreadable(const std::string& source, std::size_t document, const std::string& problem);

  /// Every image some plan needs facts of, with everything any plan asks for it: fetched once.
  policy::ReviewPlan imagesToFetch() const;

  /// Evaluates every plan with `facts` and folds owned objects into their owners.
  Report evaluate(const policy::ImageFactsMap& facts) const;

 private:
  struct Entry;
  std::shared_ptr<const policy::PolicySet> policies_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

/// The readable report: the workloads with findings (grouped by workload, then policy and rule,
/// with the fixes), then the summary and the images whose facts could not be fetched.
std::string renderTable(const Report& report);

/// The report as JSON; the schema is in README.md ("Auditing a cluster").
nlohmann::json renderJson(const Report& report);

/// The report as a SARIF 2.1.0 log (cli/sarif.h): a logical location per workload
/// ("namespace/Kind/name") and its file as the physical location; every rule checked is in
/// tool.driver.rules, every finding a result with its container and image in the properties.
/// Objects that could not be read and images not fetched are error notifications.
nlohmann::json renderSarif(const Report& report, const SarifTool& tool,
                           const policy::PolicySet* policies);

/// 1 when an Enforce rule fails somewhere, else 2 when an object could not be read, else 3 when
/// an image's facts could not be fetched, else 0. The codes of commands.h.
int exitCode(const Report& report);

}  // namespace imagegate::cli::audit
