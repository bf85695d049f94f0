#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/audit.h"
#include "cli/audit_input.h"
#include "cli/commands.h"
#include "cli/policy_report.h"
#include "cli/version.h"
#include "cli/wiring.h"
#include "common/deadline.h"
#include "common/duration.h"
#include "common/error.h"
#include "service/facts_fetcher.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: imagegate audit [--policy PATH] [--registry-config FILE] [--platform OS/ARCH]\n"
    "                       [--output table|json|policyreport|sarif] [--offline] [--timeout 5m]\n"
    "                       [--max-input-bytes 256MiB] [--quiet] FILE|DIR... | -\n"
    "\n"
    "Reviews every object that `kubectl get pods,deployments,statefulsets,daemonsets,\n"
    "replicasets,jobs,cronjobs,replicationcontrollers -A -o json` prints (a List; a single\n"
    "object works too; '-' reads stdin), or the manifests of a directory (every *.yaml, *.yml\n"
    "and *.json under it, multi-document YAML too), as the webhook would review them on CREATE,\n"
    "and reports what the policies would deny or warn, per workload, policy and rule, with the\n"
    "fixes. Each image's facts are fetched once, in parallel; progress goes to stderr on a\n"
    "terminal or when fetching takes longer than --progress-after. Pods, ReplicaSets and Jobs\n"
    "whose owner is in the input are reported through it, not twice.\n"
    "Outputs: table (for people), json (imagegate's AuditReport), policyreport (a List of\n"
    "wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace, for `kubectl apply -f -`), sarif\n"
    "(SARIF 2.1.0, for code-scanning UIs).\n"
    "Exit code 0 nothing denied, 1 an Enforce rule fails, 2 usage or input error (or an object\n"
    "or document that could not be read), 3 an image's facts could not be fetched.\n";

struct AuditFlags {
  std::string policyPath;
  std::string registryConfig;
  std::string platform;
  std::string output;
  std::string timeout;
  std::string progressAfter;
  std::size_t maxInputBytes = 0;
  bool offline = false;
  bool quiet = false;
  std::vector<std::string> inputs;
};

/// One stderr line per image fetched, once the run is worth it: from the start on a terminal,
/// else only when fetching takes longer than `delay` (a quick CI run stays silent). Never stdout.
class FetchProgress {
 public:
  /// `known` of the `total` images are known already (from a cache): counted as done.
  FetchProgress(std::size_t total, std::size_t known, bool enabled, bool atOnce)
      : total_(total), done_(known), enabled_(enabled) {
    if (enabled_ && atOnce) show("fetching the facts of " + countOf(total_) + knownNote());
  }

  /// Called when `delay` passed with fetches still running.
  void slow(std::chrono::milliseconds waited) {
    std::lock_guard lock(mutex_);
    if (!enabled_ || shown_) return;
    show("fetching the facts of " + countOf(total_) + knownNote() + "; " + std::to_string(done_) +
         " done after " + std::to_string(waited.count() / 1000) + "." +
         std::to_string(waited.count() % 1000 / 100) + " s");
  }

  void done(const image::ImageRef& image, const policy::ImageLookup& lookup) {
    std::lock_guard lock(mutex_);
    ++done_;
    if (!shown_) return;
    std::string line = "fetched " + std::to_string(done_) + "/" + std::to_string(total_) +
                       " images: " + image.str();
    if (!lookup.facts) line += " (failed: " + lookup.error + ")";
    print(line);
  }

 private:
  std::string knownNote() const {
    return done_ == 0 ? "" : " (" + std::to_string(done_) + " known from the cache)";
  }
  static std::string countOf(std::size_t n) {
    return std::to_string(n) + (n == 1 ? " image" : " images");
  }
  void show(const std::string& line) {
    shown_ = true;
    print(line);
  }
  static void print(const std::string& line) { std::cerr << "imagegate audit: " << line << "\n"; }

  std::mutex mutex_;
  std::size_t total_;
  std::size_t done_;
  bool enabled_;
  bool shown_ = false;
};

/// Every image once, in parallel, through the fetcher and cache the webhook uses. One fetch call
/// per image, so that each one's end can be reported; the fetcher bounds the parallelism.
policy::ImageFactsMap fetchFacts(const policy::ReviewPlan& wanted, service::FetcherOptions options,
                                 Deadline deadline, bool showProgress,
                                 std::chrono::milliseconds progressAfter) {
  policy::ImageFactsMap facts;
  if (wanted.images.empty()) return facts;
  const std::size_t threads = std::max<std::size_t>(1, options.threads);
  service::FactsFetcher fetcher(std::move(options));
  const std::vector<image::ImageRef> toFetch = fetcher.lookUpKnown(wanted, facts);
  if (toFetch.empty()) return facts;

  FetchProgress progress(wanted.images.size(), wanted.images.size() - toFetch.size(), showProgress,
                         isatty(STDERR_FILENO) == 1 || progressAfter.count() == 0);
  std::mutex mutex;
  std::condition_variable allDone;
  std::size_t finished = 0;
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < toFetch.size(); i = next++) {
      policy::ImageFactsMap one;
      fetcher.fetch(wanted, {toFetch[i]}, deadline, one);
      policy::ImageLookup& lookup = one[toFetch[i]];
      std::lock_guard lock(mutex);
      progress.done(toFetch[i], lookup);
      facts[toFetch[i]] = std::move(lookup);
      ++finished;
      allDone.notify_all();
    }
  };
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < std::min(threads, toFetch.size()); ++i) workers.emplace_back(work);
  {
    std::unique_lock lock(mutex);
    const auto everyImage = [&] { return finished == toFetch.size(); };
    if (!allDone.wait_for(lock, progressAfter, everyImage)) {
      lock.unlock();
      progress.slow(progressAfter);
      lock.lock();
      allDone.wait(lock, everyImage);
    }
  }
  for (std::thread& worker : workers) worker.join();
  return facts;
}

void printUnreadable(const audit::Report& report) {
  for (const audit::WorkloadReport& w : report.workloads) {
    if (w.problem.empty()) continue;
    std::cerr << "imagegate audit: " << w.label() << ": could not be evaluated: " << w.problem
              << "\n";
  }
}

void printReport(const audit::Report& report, const AuditFlags& flags,
                 const policy::PolicySet& policies) {
  const auto dump = [](const nlohmann::json& document) {
    std::cout << document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  };
  if (flags.output == "json") {
    dump(audit::renderJson(report));
  } else if (flags.output == "policyreport") {
    dump(audit::renderPolicyReports(report, std::chrono::system_clock::now()));
  } else if (flags.output == "sarif") {
    dump(audit::renderSarif(report, SarifTool{"imagegate", kVersion, kInformationUri}, &policies));
  } else {
    std::cout << audit::renderTable(report);
  }
}

int runAudit(const AuditFlags& flags) {
  if (flags.output != "table" && flags.output != "json" && flags.output != "policyreport" &&
      flags.output != "sarif") {
    std::cerr << "imagegate audit: --output must be table, json, policyreport or sarif\n";
    return kExitUsage;
  }
  const auto timeout = parseGoDuration(flags.timeout);
  if (!timeout || timeout->count() == 0) {
    std::cerr << "imagegate audit: --timeout must be a duration such as 5m or 90s\n";
    return kExitUsage;
  }
  const auto progressAfter = parseGoDuration(flags.progressAfter);
  if (!progressAfter) {
    std::cerr << "imagegate audit: --progress-after must be a duration such as 1s or 0s\n";
    return kExitUsage;
  }
  service::FetcherOptions fetcherOptions;
  try {
    if (!flags.offline) {
      fetcherOptions = makeFetcherOptions(flags.registryConfig, flags.platform);
      // The images are this command's own: no other review to shield from a slow registry.
      fetcherOptions.perRegistry = fetcherOptions.threads;
    }
  } catch (const Error& e) {
    std::cerr << "imagegate audit: " << e.what() << "\n";
    return kExitUsage;
  }
  const auto policies = loadPoliciesOrReport(flags.policyPath);
  if (!policies) return kExitUsage;

  audit::Auditor auditor(policies);
  try {
    audit::readInputs(flags.inputs, flags.maxInputBytes, auditor, std::cin);
  } catch (const Error& e) {
    std::cerr << "imagegate audit: " << e.what() << "\n";
    return kExitUsage;
  }
  const policy::ReviewPlan wanted = auditor.imagesToFetch();
  policy::ImageFactsMap facts;
  if (flags.offline) {
    for (const auto& [image, needs] : wanted.images) {
      facts[image].error = "not fetched: imagegate audit --offline";
    }
  } else {
    facts = fetchFacts(wanted, std::move(fetcherOptions), Deadline::after(*timeout), !flags.quiet,
                       *progressAfter);
  }
  const audit::Report report = auditor.evaluate(facts);
  printUnreadable(report);
  printReport(report, flags, *policies);
  return audit::exitCode(report);
}

}  // namespace

int auditCommand(const std::vector<std::string>& args) {
  AuditFlags flags;
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "policy", po::value(&flags.policyPath)->default_value(defaultPolicyPath(), "policies"),
      "policy file or directory")("registry-config",
                                  po::value(&flags.registryConfig)->default_value(""),
                                  "registry settings YAML (platform, credentials, CAs, timeouts)")(
      "platform", po::value(&flags.platform)->default_value(""),
      "platform picked from image indexes (default: the registry config's, else linux/amd64)")(
      "output", po::value(&flags.output)->default_value("table"),
      "table, json, policyreport or sarif")(
      "offline", po::bool_switch(&flags.offline),
      "fetch nothing: rules that need image facts are judged by each policy's onFetchError")(
      "timeout", po::value(&flags.timeout)->default_value("5m"),
      "fetching every image's facts must end within this")(
      "max-input-bytes",
      po::value(&flags.maxInputBytes)->default_value(std::size_t{256} << 20, "256MiB"),
      "each file and all inputs together; parsing holds several times this in memory")(
      "quiet,q", po::bool_switch(&flags.quiet), "no progress lines on stderr")(
      "progress-after", po::value(&flags.progressAfter)->default_value("1s"),
      "show progress when fetching lasts longer than this (at once on a terminal)")(
      "input", po::value(&flags.inputs),
      "kubectl get -o json output, manifests or directories of them: FILE|DIR..., or - for stdin");
  po::positional_options_description positional;
  positional.add("input", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate audit: " << e.what() << "\n\n" << kUsage << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << options;
    return kExitOk;
  }
  if (flags.inputs.empty()) {
    std::cerr << "imagegate audit: name at least one input file, or - for stdin\n\n" << kUsage;
    return kExitUsage;
  }
  if (flags.policyPath.empty()) {
    std::cerr << "imagegate audit: --policy is required (no ./policies here)\n";
    return kExitUsage;
  }
  if (flags.maxInputBytes == 0) {
    std::cerr << "imagegate audit: --max-input-bytes must be at least 1\n";
    return kExitUsage;
  }
  log::setLevel(log::Level::kError);
  return runAudit(flags);
}

}  // namespace imagegate::cli
