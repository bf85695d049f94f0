#include "service/admission_service.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>
#include <map>
#include <utility>

#include "admission/response.h"
#include "common/log.h"
#include "policy/evaluator.h"

namespace imagegate::service {
namespace {

using admission::AdmissionRequest;
using admission::Verdict;
using policy::Action;
using policy::RuleResult;
using policy::RuleStatus;

// Bounds on what one response carries, whatever the number of containers and rules.
constexpr std::size_t kMaxDenialLines = 20;
constexpr std::size_t kMaxAnnotationValue = 2048;

std::string subject(const RuleResult& result) {
  if (!result.container) return "pod";
  return std::string(admission::describe(
             result.containerKind.value_or(admission::ContainerKind::kContainer))) +
         " \"" + *result.container + "\"";
}

std::string describeFinding(const RuleResult& result) {
  std::string text = subject(result) + ": " + result.message;
  if (result.status == RuleStatus::kError)
    text = subject(result) + ": could not be evaluated: " + result.message;
  if (!result.remediation.empty()) text += " (fix: " + result.remediation + ")";
  return text;
}

std::string objectLabel(const AdmissionRequest& request) {
  std::string name = request.name.empty() ? "(unnamed)" : request.name;
  return request.kind + " \"" + (request.namespaceName.empty() ? "" : request.namespaceName + "/") +
         name + "\"";
}

std::string denialMessage(const AdmissionRequest& request,
                          const std::vector<const RuleResult*>& denials) {
  std::string message = "imagegate denied " + objectLabel(request) + ": " +
                        std::to_string(denials.size()) +
                        (denials.size() == 1 ? " violation" : " violations");
  for (std::size_t i = 0; i < denials.size() && i < kMaxDenialLines; ++i) {
    const RuleResult& r = *denials[i];
    message += "\n- policy \"" + r.policy + "\" rule \"" + r.rule + "\": " + describeFinding(r);
  }
  if (denials.size() > kMaxDenialLines) {
    message += "\n- and " + std::to_string(denials.size() - kMaxDenialLines) + " more";
  }
  return message;
}

std::string warningFor(const RuleResult& result) {
  const char* mode = result.action == Action::kAudit ? "audit" : "warn";
  return std::string("imagegate ") + mode + " " + result.policy + "/" + result.rule + ": " +
         subject(result) + ": " + result.message;
}

void appendAnnotation(std::map<std::string, std::string>& annotations, const RuleResult& result) {
  // The API server records each key as "<webhook name>/<key>" and rejects keys that contain a
  // '/', so the key is the bare policy name.
  std::string& value = annotations[result.policy];
  if (value.size() >= kMaxAnnotationValue) return;
  if (!value.empty()) value += "; ";
  value += result.rule + ": " + describeFinding(result);
  if (value.size() > kMaxAnnotationValue) value = value.substr(0, kMaxAnnotationValue - 3) + "...";
}

Verdict verdictFor(const AdmissionRequest& request, const std::vector<RuleResult>& results) {
  Verdict verdict;
  std::vector<const RuleResult*> denials;
  for (const RuleResult& result : results) {
    if (result.status == RuleStatus::kPass) continue;
    if (result.status == RuleStatus::kWarning) {  // onFetchError: Allow, whatever the action
      verdict.warnings.push_back(warningFor(result));
      continue;
    }
    switch (result.action) {
      case Action::kEnforce:
        denials.push_back(&result);
        break;
      case Action::kAudit:
        verdict.warnings.push_back(warningFor(result));
        appendAnnotation(verdict.auditAnnotations, result);
        break;
      case Action::kWarn:
        verdict.warnings.push_back(warningFor(result));
        break;
    }
  }
  if (!denials.empty()) {
    verdict.allowed = false;
    verdict.code = 403;
    verdict.reason = "Forbidden";
    verdict.message = denialMessage(request, denials);
  }
  return verdict;
}

nlohmann::json findingsForLog(const std::vector<RuleResult>& results) {
  nlohmann::json findings = nlohmann::json::array();
  for (const RuleResult& r : results) {
    if (r.status == RuleStatus::kPass) continue;
    findings.push_back({{"policy", r.policy},
                        {"rule", r.rule},
                        {"action", r.action == Action::kEnforce ? "Enforce"
                                   : r.action == Action::kAudit ? "Audit"
                                                                : "Warn"},
                        {"status", r.status == RuleStatus::kFail    ? "fail"
                                   : r.status == RuleStatus::kError ? "error"
                                                                    : "warning"},
                        {"container", r.container.value_or("")},
                        {"message", r.message}});
  }
  return findings;
}

void logDecision(const AdmissionRequest& request, const Verdict& verdict,
                 const std::vector<RuleResult>& results) {
  const bool clean = std::all_of(results.begin(), results.end(),
                                 [](const RuleResult& r) { return r.status == RuleStatus::kPass; });
  // A clean review is logged at debug only; skip building its fields when nobody will see them.
  if (clean && !log::enabled(log::Level::kDebug)) return;
  nlohmann::json findings = findingsForLog(results);
  const nlohmann::json fields = {{"uid", request.uid},
                                 {"kind", request.kind},
                                 {"namespace", request.namespaceName},
                                 {"name", request.name},
                                 {"user", request.userName},
                                 {"dryRun", request.dryRun},
                                 {"allowed", verdict.allowed},
                                 {"findings", std::move(findings)}};
  if (fields["findings"].empty()) {
    log::debug("admission review", fields);
  } else {
    log::info("admission review", fields);
  }
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

/// Fetches the facts of every image in parallel on `pool`, waiting no longer than `deadline`.
/// Fetches still running at the deadline are reported as timed out and finish in the
/// background, bounded by their own deadline.
policy::ImageFactsMap fetchAll(const std::set<std::string>& images, registry::Registry& registry,
                               const registry::Platform& platform, boost::asio::thread_pool& pool,
                               Deadline deadline) {
  std::map<std::string, std::future<registry::ImageFacts>> pending;
  policy::ImageFactsMap facts;
  for (const std::string& image : images) {
    registry::ImageRef ref;
    try {
      ref = registry::parseImageRef(image);
    } catch (const Error& e) {
      facts[image].error = e.what();
      continue;
    }
    auto task = std::make_shared<std::packaged_task<registry::ImageFacts()>>(
        [&registry, ref, platform, deadline] {
          return registry.fetchFacts(ref, platform, deadline);
        });
    pending.emplace(image, task->get_future());
    boost::asio::post(pool, [task] { (*task)(); });
  }
  for (auto& [image, future] : pending) {
    policy::ImageLookup& lookup = facts[image];
    if (future.wait_until(deadline.at()) != std::future_status::ready) {
      lookup.error = "timed out fetching " + image + " within the admission deadline";
      continue;
    }
    try {
      lookup.facts = future.get();
    } catch (const std::exception& e) {
      lookup.error = e.what();
    }
  }
  return facts;
}

}  // namespace

AdmissionService::AdmissionService(std::shared_ptr<const policy::PolicySet> policies,
                                   ServiceOptions options)
    : policies_(std::move(policies)), options_(std::move(options)) {
  if (options_.registry) {
    fetchPool_ =
        std::make_unique<boost::asio::thread_pool>(std::max<std::size_t>(1, options_.fetchThreads));
    waitPool_ =
        std::make_unique<boost::asio::thread_pool>(std::max<std::size_t>(1, options_.waitThreads));
  }
}

AdmissionService::~AdmissionService() { join(); }
AdmissionService::AdmissionService(AdmissionService&&) noexcept = default;
AdmissionService& AdmissionService::operator=(AdmissionService&&) noexcept = default;

std::variant<ReviewOutcome, AdmissionService::Pending> AdmissionService::decode(
    std::string_view body) const {
  admission::DecodedReview decoded;
  try {
    decoded = admission::decodeReview(body, options_.decodeLimits);
  } catch (const admission::UnreadableReview& e) {
    log::warn("unreadable admission review", {{"error", e.what()}});
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
    return answer(decoded.envelope, malformed->uid, verdict, 0);
  }
  Pending pending{decoded.envelope, std::get<AdmissionRequest>(std::move(decoded.request)), {}};
  if (options_.registry) pending.images = policy::imagesNeedingFacts(*policies_, pending.request);
  return pending;
}

ReviewOutcome AdmissionService::finish(const Pending& pending,
                                       const policy::ImageFactsMap& facts) const {
  const std::vector<RuleResult> results = policy::evaluate(*policies_, pending.request, facts);
  const Verdict verdict = verdictFor(pending.request, results);
  logDecision(pending.request, verdict, results);
  std::size_t violations = 0;
  for (const RuleResult& r : results) violations += r.status == RuleStatus::kPass ? 0 : 1;
  return answer(pending.envelope, pending.request.uid, verdict, violations);
}

policy::ImageFactsMap AdmissionService::fetchFacts(const Pending& pending,
                                                   Deadline deadline) const {
  if (pending.images.empty()) return {};
  const Deadline fetchDeadline(deadline.at() - options_.answerMargin);
  return fetchAll(pending.images, *options_.registry, options_.platform, *fetchPool_,
                  fetchDeadline);
}

ReviewOutcome AdmissionService::review(std::string_view body, Deadline deadline) const {
  auto decoded = decode(body);
  if (auto* outcome = std::get_if<ReviewOutcome>(&decoded)) return std::move(*outcome);
  const Pending& pending = std::get<Pending>(decoded);
  return finish(pending, fetchFacts(pending, deadline));
}

void AdmissionService::reviewAsync(std::string_view body, Deadline deadline,
                                   std::function<void(ReviewOutcome)> done) const {
  auto decoded = decode(body);
  if (auto* outcome = std::get_if<ReviewOutcome>(&decoded)) {
    done(std::move(*outcome));
    return;
  }
  auto pending = std::make_shared<Pending>(std::get<Pending>(std::move(decoded)));
  if (pending->images.empty()) {  // the common case: no registry round trip, answer right here
    done(finish(*pending, {}));
    return;
  }
  boost::asio::post(*waitPool_, [this, pending, deadline, done = std::move(done)] {
    done(finish(*pending, fetchFacts(*pending, deadline)));
  });
}

void AdmissionService::join() {
  if (waitPool_) waitPool_->join();
  if (fetchPool_) fetchPool_->join();
}

}  // namespace imagegate::service
