// What one cached review costs inside the service, without TLS, HTTP or the I/O threads: a
// report, not a test. See bench/README.md, "The service alone".
//
// Loads the policies and an AdmissionReview body, then answers it `runs` times through
// AdmissionService::review (decode, plan, evaluate, verdict, encode, metrics, the log line) and
// prints the CPU time per review. With a rule-cache budget of 0 the rules that read only the
// image run for every container, as without the rule-result cache; the same binary gives both.
//
//   review_bench BODY [POLICY=policies] [RUNS=20000] [RULE_CACHE_BYTES=16777216]
// The log line goes to stderr: redirect it (2>/dev/null) as a server's log would go to a file.

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "policy/loader.h"
#include "service/admission_service.h"

namespace {

double cpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string readFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace imagegate;
  if (argc < 2) {
    std::cerr << "usage: review_bench BODY [POLICY=policies] [RUNS=20000] [RULE_CACHE_BYTES]\n";
    return 2;
  }
  const std::string body = readFile(argv[1]);
  const char* policyPath = argc > 2 ? argv[2] : "policies";
  const long runs = argc > 3 ? std::atol(argv[3]) : 20000;
  service::ServiceOptions options;
  if (argc > 4) options.ruleResultCacheBytes = std::strtoull(argv[4], nullptr, 10);
  auto policies = std::make_shared<const policy::PolicySet>(policy::loadPolicies(policyPath));
  const service::AdmissionService service(policies, options);
  const Deadline deadline = Deadline::after(std::chrono::seconds(60));
  const service::ReviewOutcome first = service.review(body, deadline);
  if (!first.answered) {
    std::cerr << "review_bench: not an AdmissionReview answer: " << first.reply.body << "\n";
    return 1;
  }
  const double start = cpuSeconds();
  std::size_t bytes = 0;
  for (long i = 0; i < runs; ++i) bytes += service.review(body, deadline).reply.body.size();
  const double perReview = (cpuSeconds() - start) / static_cast<double>(runs) * 1e6;
  std::printf("%s: %ld reviews, %.2f us CPU per review (%zu response bytes, rule cache %s)\n",
              argv[1], runs, perReview, bytes / static_cast<std::size_t>(runs),
              options.ruleResultCacheBytes > 0 ? "on" : "off");
  return 0;
}
