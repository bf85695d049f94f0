#include "service/admission_service.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "admission/response.h"
#include "cache/rule_result_cache.h"
#include "common/log.h"
#include "metrics/metrics.h"
#include "policy/evaluator.h"
#include "service/task_pool.h"
#include "service/verdict.h"

namespace imagegate::service {
namespace {

using admission::AdmissionRequest;
using admission::Verdict;
using policy::Action;
using policy::RuleResult;
using policy::RuleStatus;

// Metrics of reviews, declared here and only here. Labels carry no names from the request:
// kinds outside the webhook's list count as "other", policies and rules come from the loaded
// policy set (and fold into "other" past a bound all the same).
metrics::CounterFamily& reviewsTotal() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_reviews_total",
      "Admission reviews answered, by object kind, operation and verdict (allowed, denied, or "
      "error for a request that could not be evaluated)",
      {"kind", "operation", "verdict"}, metrics::FamilyOptions{256, {"kind"}});
  return family;
}

metrics::HistogramFamily& reviewSeconds() {
  static metrics::HistogramFamily& family = metrics::defaultRegistry().histogram(
      "imagegate_review_duration_seconds",
      "Time from reading an AdmissionReview to its answer, registry fetches included",
      metrics::latencyBuckets());
  return family;
}

metrics::CounterFamily& policyEvaluations() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_policy_evaluations_total",
      "Reviews each policy applied to, by whether all its rules passed (pass) or not (fail)",
      {"policy", "result"}, metrics::FamilyOptions{512, {"policy"}});
  return family;
}

metrics::CounterFamily& violationsTotal() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_violations_total",
      "Rule findings, one per container and rule: fail (violated), error (could not be "
      "evaluated) or warning (image facts missing, allowed by onFetchError)",
      {"policy", "rule", "action", "status"}, metrics::FamilyOptions{2000, {"policy", "rule"}});
  return family;
}

// Declared at start, so that the families are listed from the first scrape.
[[maybe_unused]] const bool kReviewMetricsDeclared =
    (reviewsTotal(), reviewSeconds(), policyEvaluations(), violationsTotal(), true);

std::string_view kindLabel(std::string_view kind) {
  static constexpr std::string_view kKinds[] = {"Pod",       "Deployment", "StatefulSet",
                                                "DaemonSet", "ReplicaSet", "ReplicationController",
                                                "Job",       "CronJob"};
  for (std::string_view known : kKinds) {
    if (kind == known) return known;
  }
  return metrics::kFoldedValue;
}

std::string_view operationLabel(admission::Operation operation) {
  switch (operation) {
    case admission::Operation::kCreate:
      return "CREATE";
    case admission::Operation::kUpdate:
      return "UPDATE";
    case admission::Operation::kDelete:
      return "DELETE";
    case admission::Operation::kConnect:
      return "CONNECT";
  }
  return "other";
}

std::string_view statusLabel(RuleStatus status) {
  switch (status) {
    case RuleStatus::kPass:
      return "pass";
    case RuleStatus::kFail:
      return "fail";
    case RuleStatus::kError:
      return "error";
    case RuleStatus::kWarning:
      return "warning";
  }
  return "other";
}

void recordReview(std::string_view kind, std::string_view operation, std::string_view verdict,
                  SteadyClock::time_point started) {
  reviewsTotal().labels({kind, operation, verdict}).inc();
  reviewSeconds().get().observe(
      std::chrono::duration<double>(SteadyClock::now() - started).count());
}

void recordFindings(const std::vector<RuleResult>& results) {
  // The evaluator groups results by policy (policy::evaluate), so one pass counts each policy
  // once, without allocating on the review's path.
  std::string_view current;
  bool passed = true;
  const auto flush = [&] {
    if (!current.empty()) policyEvaluations().labels({current, passed ? "pass" : "fail"}).inc();
  };
  for (const RuleResult& r : results) {
    if (r.policy != current) {
      flush();
      current = r.policy;
      passed = true;
    }
    if (r.status == RuleStatus::kPass) continue;
    passed = false;
    violationsTotal()
        .labels({r.policy, r.rule, policy::actionName(r.action), statusLabel(r.status)})
        .inc();
  }
  flush();
}

nlohmann::json findingsForLog(const std::vector<RuleResult>& results) {
  nlohmann::json findings = nlohmann::json::array();
  for (const RuleResult& r : results) {
    if (r.status == RuleStatus::kPass) continue;
    findings.push_back({{"policy", r.policy},
                        {"rule", r.rule},
                        {"action", policy::actionName(r.action)},
                        {"status", r.status == RuleStatus::kFail    ? "fail"
                                   : r.status == RuleStatus::kError ? "error"
                                                                    : "warning"},
                        {"container", r.container.value_or("")},
                        {"message", r.message},
                        {"remediation", r.remediation}});
  }
  return findings;
}

/// Where the review's image facts came from: "none" needed, all from the "cache", or a registry
/// round trip ("miss").
std::string_view factsSource(const policy::ReviewPlan& plan, bool fetched) {
  if (fetched) return "miss";
  return plan.images.empty() ? "none" : "cache";
}

/// One JSON line per review at info (--log-level warn turns it off): who asked for what, the
/// verdict, every finding with its fix, how long it took and whether a registry was asked.
log::DeferredLine decisionLine(const AdmissionRequest& request, const Verdict& verdict,
                               const std::vector<RuleResult>& results, std::string_view facts,
                               SteadyClock::time_point started) {
  if (!log::enabled(log::Level::kInfo)) return {};
  const double millis =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  // Built field by field, not as a JSON tree: this line is a tenth of a cached review's cost.
  log::Line line(log::Level::kInfo, "admission review");
  line.add("uid", request.uid)
      .add("kind", request.kind)
      .add("namespace", request.namespaceName)
      .add("name", request.name)
      .add("operation", operationLabel(request.operation))
      .add("user", request.userName)
      .add("dryRun", request.dryRun)
      .add("allowed", verdict.allowed)
      .add("findings", findingsForLog(results))
      .add("durationMs", std::round(millis * 1000) / 1000)
      .add("imageFacts", facts);
  return log::DeferredLine(std::move(line));
}

ReviewOutcome answer(const admission::ReviewEnvelope& envelope, const std::string& uid,
                     const Verdict& verdict, std::size_t violations) {
  ReviewOutcome outcome;
  outcome.reply =
      HttpReply{200, "application/json", admission::encodeResponse(envelope, uid, verdict)};
  outcome.answered = true;
  outcome.allowed = verdict.allowed;
  outcome.violations = violations;
  return outcome;
}

}  // namespace

namespace {

/// Revisions name policy sets in the rule-result cache; unique across services, so that no two
/// sets ever share one.
std::uint64_t nextPolicyRevision() {
  static std::atomic<std::uint64_t> last{0};
  return ++last;
}

}  // namespace

AdmissionService::AdmissionService(std::shared_ptr<const policy::PolicySet> policies,
                                   ServiceOptions options)
    : policies_(std::make_unique<std::atomic<std::shared_ptr<const PolicySnapshot>>>(
          std::make_shared<const PolicySnapshot>(
              PolicySnapshot{std::move(policies), nextPolicyRevision()}))),
      options_(std::move(options)),
      reviewPool_(std::make_unique<TaskPool>(options_.waitThreads)) {
  if (options_.facts.registry) fetcher_ = std::make_unique<FactsFetcher>(options_.facts);
  if (options_.ruleResultCacheBytes > 0) {
    ruleResults_ = std::make_unique<cache::RuleResultCache>(options_.ruleResultCacheBytes);
  }
}

AdmissionService::~AdmissionService() { join(); }
AdmissionService::AdmissionService(AdmissionService&&) noexcept = default;
AdmissionService& AdmissionService::operator=(AdmissionService&&) noexcept = default;

std::variant<ReviewOutcome, AdmissionService::PendingPtr> AdmissionService::decode(
    std::string_view body) const {
  const SteadyClock::time_point started = SteadyClock::now();
  admission::DecodedReview decoded;
  try {
    decoded = admission::decodeReview(body, options_.decodeLimits);
  } catch (const admission::UnreadableReview& e) {
    log::warn("unreadable admission review", {{"error", e.what()}});
    recordReview("unknown", "unknown", "error", started);
    ReviewOutcome outcome;
    outcome.reply =
        HttpReply{400, "text/plain; charset=utf-8", std::string("imagegate: ") + e.what() + "\n"};
    return outcome;
  }
  if (const auto* malformed = std::get_if<admission::MalformedRequest>(&decoded.request)) {
    log::warn("malformed admission request",
              {{"uid", malformed->uid}, {"error", malformed->problem}});
    Verdict verdict;
    verdict.allowed = false;
    verdict.code = 400;
    verdict.reason = "BadRequest";
    verdict.message = "imagegate could not evaluate this request: " + malformed->problem;
    recordReview("unknown", "unknown", "error", started);
    return answer(decoded.envelope, malformed->uid, verdict, 0);
  }
  auto pending = std::make_shared<Pending>();
  pending->started = started;
  pending->envelope = std::move(decoded.envelope);
  pending->request = std::get<AdmissionRequest>(std::move(decoded.request));
  pending->policies = policies_->load();
  if (const auto& object = pending->request.object) {
    pending->plan =
        policy::planReview(*pending->policies->set, *object, pending->request.namespaceName);
  }
  if (fetcher_) pending->toFetch = fetcher_->lookUpKnown(pending->plan, pending->facts);
  return pending;
}

ReviewOutcome AdmissionService::finish(const Pending& pending) const {
  const std::vector<RuleResult> results =
      policy::evaluate(pending.plan, pending.facts,
                       policy::MemoScope{ruleResults_.get(), pending.policies->revision});
  const Verdict verdict = verdictFor(pending.request, results);
  log::DeferredLine decisionLog =
      decisionLine(pending.request, verdict, results, factsSource(pending.plan, pending.fetched),
                   pending.started);
  recordFindings(results);
  recordReview(kindLabel(pending.request.kind), operationLabel(pending.request.operation),
               verdict.allowed ? "allowed" : "denied", pending.started);
  std::size_t violations = 0;
  for (const RuleResult& r : results) violations += r.status == RuleStatus::kPass ? 0 : 1;
  ReviewOutcome outcome = answer(pending.envelope, pending.request.uid, verdict, violations);
  outcome.decisionLog = std::move(decisionLog);
  return outcome;
}

void AdmissionService::fetchMissing(Pending& pending, Deadline deadline) const {
  if (pending.toFetch.empty()) return;
  pending.fetched = true;
  fetcher_->fetch(pending.plan, pending.toFetch, Deadline(deadline.at() - options_.answerMargin),
                  pending.facts);
  pending.toFetch.clear();
}

ReviewOutcome AdmissionService::review(std::string_view body, Deadline deadline) const {
  auto decoded = decode(body);
  if (auto* outcome = std::get_if<ReviewOutcome>(&decoded)) return std::move(*outcome);
  Pending& pending = *std::get<PendingPtr>(decoded);
  fetchMissing(pending, deadline);
  return finish(pending);
}

void AdmissionService::reviewAsync(std::string_view body, Deadline deadline,
                                   std::function<void(ReviewOutcome)> done) const {
  if (body.size() > options_.inlineDecodeBytes) {
    reviewPool_->post(
        [this, body, deadline, done = std::move(done)] { done(review(body, deadline)); });
    return;
  }
  auto decoded = decode(body);
  if (auto* outcome = std::get_if<ReviewOutcome>(&decoded)) {
    done(std::move(*outcome));
    return;
  }
  PendingPtr pending = std::get<PendingPtr>(std::move(decoded));
  if (pending->toFetch.empty()) {  // the common case: no registry round trip, answer right here
    done(finish(*pending));
    return;
  }
  reviewPool_->post([this, pending, deadline, done = std::move(done)] {
    fetchMissing(*pending, deadline);
    done(finish(*pending));
  });
}

std::optional<cache::CacheStats> AdmissionService::layerCacheStats() const {
  if (!fetcher_) return std::nullopt;
  return fetcher_->layerCacheStats();
}

std::optional<cache::CacheStats> AdmissionService::ruleResultCacheStats() const {
  if (!ruleResults_) return std::nullopt;
  return ruleResults_->stats();
}

bool AdmissionService::waitForFetches(std::chrono::milliseconds maxWait) const {
  return !fetcher_ || fetcher_->waitIdle(SteadyClock::now() + maxWait);
}

void AdmissionService::setPolicies(std::shared_ptr<const policy::PolicySet> policies) {
  policies_->store(std::make_shared<const PolicySnapshot>(
      PolicySnapshot{std::move(policies), nextPolicyRevision()}));
}

std::shared_ptr<const policy::PolicySet> AdmissionService::policies() const {
  return policies_->load()->set;
}

void AdmissionService::join() { joinUntil(std::nullopt); }

std::vector<std::string> AdmissionService::join(std::chrono::milliseconds maxWait) {
  return joinUntil(SteadyClock::now() + maxWait);
}

std::vector<std::string> AdmissionService::joinUntil(std::optional<SteadyClock::time_point> until) {
  std::vector<std::string> stillRunning;
  // Queued fetches fail at once, so the reviews waiting on them answer now, not at their
  // deadlines; only fetches already running are waited for.
  if (fetcher_) fetcher_->stop();
  if (reviewPool_ && !reviewPool_->waitIdle(until)) {
    stillRunning.push_back("reviews not yet answered: " + std::to_string(reviewPool_->busy()));
  }
  if (fetcher_ && !fetcher_->waitIdle(until)) {
    for (std::string& fetch : fetcher_->describeRunning()) stillRunning.push_back(std::move(fetch));
  }
  return stillRunning;
}

}  // namespace imagegate::service
