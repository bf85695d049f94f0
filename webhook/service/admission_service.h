#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "admission/review.h"
#include "cache/cache_stats.h"
#include "common/deadline.h"
#include "common/http_reply.h"
#include "common/log.h"
#include "policy/evaluator.h"
#include "policy/findings_memo.h"
#include "policy/model.h"
#include "policy/plan.h"
#include "service/facts_fetcher.h"

// Orchestrates one review: decode -> evaluate -> verdict -> encode. Used by both the HTTPS
// server and `imagegate review`, so both give byte-identical answers.
namespace imagegate::cache {
class RuleResultCache;
}  // namespace imagegate::cache

namespace imagegate::service {

class TaskPool;

struct ServiceOptions {
  admission::DecodeLimits decodeLimits;
  /// Where image facts come from; without a registry none are fetched and rules that need them
  /// are judged by each policy's onFetchError.
  FetcherOptions facts;
  /// Reviews waiting on fetches or decoding large bodies at once (reviewAsync).
  std::size_t waitThreads = 64;
  /// reviewAsync decodes larger bodies on a review thread: decoding megabytes takes milliseconds
  /// that the caller's I/O thread owes its other connections.
  std::size_t inlineDecodeBytes = 64 * 1024;
  /// Time kept back from the review's deadline to evaluate and answer after fetching.
  std::chrono::milliseconds answerMargin{250};
  /// Budget of the findings kept per image and policy revision (rules that read only the image
  /// run once per image, not per container); 0 turns the cache off.
  std::size_t ruleResultCacheBytes = std::size_t{16} << 20;
};

struct ReviewOutcome {
  HttpReply reply;
  bool answered = false;  ///< reply.body is an AdmissionReview (false: HTTP error such as 400).
  bool allowed = true;    ///< response.allowed when answered.
  std::size_t violations = 0;  ///< Failed rules, whatever their action.
  /// The review's log line: written when the outcome is done with, after its reply is handed on.
  log::DeferredLine decisionLog;
};

class AdmissionService {
 public:
  AdmissionService(std::shared_ptr<const policy::PolicySet> policies, ServiceOptions options);
  ~AdmissionService();
  AdmissionService(AdmissionService&&) noexcept;
  AdmissionService& operator=(AdmissionService&&) noexcept;

  /// Never throws for bad input: every problem becomes an HTTP error or a denial. Blocks while
  /// image facts are fetched.
  ReviewOutcome review(std::string_view body, Deadline deadline) const;

  /// The same answer as review(), given to `done` exactly once: on the calling thread when no
  /// registry round trip is needed (most reviews, including those whose images are all cached),
  /// otherwise on a service thread once the facts are in, so the caller's thread never waits on
  /// a registry. Bodies larger than inlineDecodeBytes are decoded on a service thread too.
  /// `body` must stay valid until `done` is called.
  void reviewAsync(std::string_view body, Deadline deadline,
                   std::function<void(ReviewOutcome)> done) const;

  /// Waits, at most `maxWait`, until no image fetch is running: fetches that outlived their
  /// reviews finish in the background and leave their outcome (cache, failure memory) behind.
  /// Reviews are served meanwhile. True when none is running.
  bool waitForFetches(std::chrono::milliseconds maxWait) const;

  /// The layer index cache's counters; nullopt without a registry.
  std::optional<cache::CacheStats> layerCacheStats() const;
  /// The rule-result cache's counters; nullopt when it is off.
  std::optional<cache::CacheStats> ruleResultCacheStats() const;

  /// Stops fetching (queued fetches fail at once) and waits for reviews and fetches in flight;
  /// call before destroying what their callbacks use. No review may be started afterwards.
  void join();
  /// The same, waiting at most `maxWait`. Returns what is still running then (empty: all done).
  /// Work still running keeps the service busy and its destructor would wait for it: a caller
  /// given a non-empty answer should leave the process rather than destroy the service.
  std::vector<std::string> join(std::chrono::milliseconds maxWait);

  /// Reviews decoded from now on use `policies`, under a new revision: the findings cached for
  /// the old set are dropped, image facts are kept. Reviews in flight finish on the set they
  /// started with. Thread-safe.
  void setPolicies(std::shared_ptr<const policy::PolicySet> policies);
  /// The set new reviews use.
  std::shared_ptr<const policy::PolicySet> policies() const;

 private:
  /// A decoded request, its plan and the facts of the images its rules need, as far as they
  /// are known. Always on the heap: the plan points into the request.
  /// A policy set and the revision that names it in the rule-result cache.
  struct PolicySnapshot {
    std::shared_ptr<const policy::PolicySet> set;
    std::uint64_t revision = 0;
  };

  struct Pending {
    admission::ReviewEnvelope envelope;
    /// The policies the review started with; the plan points into them.
    std::shared_ptr<const PolicySnapshot> policies;
    admission::AdmissionRequest request;
    policy::ReviewPlan plan;
    policy::ImageFactsMap facts;           ///< From the cache, or why an image cannot be fetched.
    std::vector<image::ImageRef> toFetch;  ///< Images needing a registry.
    SteadyClock::time_point started;       ///< When decoding began, for the latency metric.
    bool fetched = false;                  ///< A registry was asked (not all from the cache).
  };
  using PendingPtr = std::shared_ptr<Pending>;

  /// An immediate answer (bad input), or a planned request with what the cache knows.
  std::variant<ReviewOutcome, PendingPtr> decode(std::string_view body) const;
  /// Fetches pending.toFetch in parallel, within `deadline`.
  void fetchMissing(Pending& pending, Deadline deadline) const;
  ReviewOutcome finish(const Pending& pending) const;
  std::vector<std::string> joinUntil(std::optional<SteadyClock::time_point> until);

  /// Swapped whole by setPolicies() while reviews run (a reload): each review takes a snapshot.
  /// In a unique_ptr so that the service stays movable.
  std::unique_ptr<std::atomic<std::shared_ptr<const PolicySnapshot>>> policies_;
  ServiceOptions options_;
  /// Null when options_.ruleResultCacheBytes is 0.
  std::unique_ptr<cache::RuleResultCache> ruleResults_;
  std::unique_ptr<FactsFetcher> fetcher_;  ///< Only when a registry is set.
  /// Always: large bodies are decoded here even without a registry. Declared after fetcher_ so
  /// that it goes first: its reviews wait on fetches.
  std::unique_ptr<TaskPool> reviewPool_;
};

}  // namespace imagegate::service
