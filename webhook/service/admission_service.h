#pragma once

#include <memory>
#include <string_view>

#include "admission/review.h"
#include "common/deadline.h"
#include "common/http_reply.h"
#include "policy/model.h"

// Orchestrates one review: decode -> evaluate -> verdict -> encode. Used by both the HTTPS
// server and `imagegate review`, so both give byte-identical answers.
namespace imagegate::service {

struct ServiceOptions {
  admission::DecodeLimits decodeLimits;
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

  /// Never throws for bad input: every problem becomes an HTTP error or a denial.
  ReviewOutcome review(std::string_view body, Deadline deadline) const;

 private:
  std::shared_ptr<const policy::PolicySet> policies_;
  ServiceOptions options_;
};

}  // namespace imagegate::service
