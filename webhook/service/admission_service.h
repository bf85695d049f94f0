#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string_view>
#include <variant>

#include "admission/review.h"
#include "common/deadline.h"
#include "common/http_reply.h"
#include "policy/evaluator.h"
#include "policy/model.h"
#include "registry/registry.h"

namespace boost::asio {
class thread_pool;
}

// Orchestrates one review: decode -> evaluate -> verdict -> encode. Used by both the HTTPS
// server and `imagegate review`, so both give byte-identical answers.
namespace imagegate::service {

struct ServiceOptions {
  admission::DecodeLimits decodeLimits;
  /// Where image facts come from; null means none are fetched and rules that need them are
  /// judged by each policy's onFetchError.
  registry::RegistryPtr registry;
  registry::Platform platform;    ///< Platform picked from multi-arch image indexes.
  std::size_t fetchThreads = 16;  ///< Images fetched at once, across all reviews.
  std::size_t waitThreads = 64;   ///< Reviews waiting on fetches at once (reviewAsync).
  /// Time kept back from the review's deadline to evaluate and answer after fetching.
  std::chrono::milliseconds answerMargin{250};
};

struct ReviewOutcome {
  HttpReply reply;
  bool answered = false;  ///< reply.body is an AdmissionReview (false: HTTP error such as 400).
  bool allowed = true;    ///< response.allowed when answered.
  std::size_t violations = 0;  ///< Failed rules, whatever their action.
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
  /// registry round trip is needed (most reviews), otherwise on a service thread once the facts
  /// are in, so the caller's thread never waits on a registry.
  void reviewAsync(std::string_view body, Deadline deadline,
                   std::function<void(ReviewOutcome)> done) const;

  /// Waits for reviews and fetches in flight; call before destroying what their callbacks use.
  void join();

 private:
  /// A decoded request waiting for the facts of `images`.
  struct Pending {
    admission::ReviewEnvelope envelope;
    admission::AdmissionRequest request;
    std::set<std::string> images;
  };

  /// An immediate answer (bad input), or a request to evaluate.
  std::variant<ReviewOutcome, Pending> decode(std::string_view body) const;
  /// The image facts the request's rules need, fetched in parallel within `deadline`.
  policy::ImageFactsMap fetchFacts(const Pending& pending, Deadline deadline) const;
  ReviewOutcome finish(const Pending& pending, const policy::ImageFactsMap& facts) const;

  std::shared_ptr<const policy::PolicySet> policies_;
  ServiceOptions options_;
  std::unique_ptr<boost::asio::thread_pool> fetchPool_;  ///< Only when a registry is set.
  std::unique_ptr<boost::asio::thread_pool> waitPool_;   ///< Reviews waiting on fetchPool_.
};

}  // namespace imagegate::service
