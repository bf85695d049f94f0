#include <boost/program_options.hpp>
#include <iostream>

#include "cli/audit.h"
#include "cli/commands.h"
#include "cli/wiring.h"
#include "common/bounded_file.h"
#include "common/deadline.h"
#include "common/duration.h"
#include "common/error.h"
#include "service/facts_fetcher.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: imagegate audit [--policy PATH] [--registry-config FILE] [--platform OS/ARCH]\n"
    "                       [--output table|json] [--offline] [--timeout 5m]\n"
    "                       [--max-input-bytes 256MiB] FILE... | -\n"
    "\n"
    "Reviews every object that `kubectl get pods,deployments,statefulsets,daemonsets,\n"
    "replicasets,jobs,cronjobs,replicationcontrollers -A -o json` prints (a List; a single\n"
    "object works too; '-' reads stdin) as the webhook would review it on CREATE, and reports\n"
    "what the policies would deny or warn, per workload, policy and rule, with the fixes.\n"
    "Each image's facts are fetched once, in parallel. Pods, ReplicaSets and Jobs whose owner\n"
    "is in the input are reported through it, not twice.\n"
    "Exit code 0 nothing denied, 1 an Enforce rule fails, 2 usage or input error (or an object\n"
    "that could not be read), 3 an image's facts could not be fetched.\n";

struct AuditFlags {
  std::string policyPath;
  std::string registryConfig;
  std::string platform;
  std::string output;
  std::string timeout;
  std::size_t maxInputBytes = 0;
  bool offline = false;
  std::vector<std::string> inputs;
};

/// stdin, bounded like a file: a pipe has no size to check up front.
std::string readStdin(std::size_t maxBytes) {
  std::string text;
  char buffer[65536];
  while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(std::cin.gcount()));
    if (text.size() > maxBytes) {
      throw Error("stdin is larger than --max-input-bytes (" + std::to_string(maxBytes) +
                  " bytes); raise it or audit one namespace at a time");
    }
  }
  return text;
}

/// Reads, parses and decodes every input into `auditor`; the size limit is for all together.
void readInputs(const AuditFlags& flags, audit::Auditor& auditor) {
  std::size_t remaining = flags.maxInputBytes;
  for (const std::string& input : flags.inputs) {
    const std::string source = input == "-" ? "stdin" : input;
    const std::string text =
        input == "-" ? readStdin(remaining) : readBoundedFile(input, remaining, "input");
    remaining -= text.size();
    for (const nlohmann::json& object : audit::objectsOf(audit::parseInput(text, source), source)) {
      auditor.add(object, source);
    }
  }
}

/// Every image once, in parallel, through the fetcher and cache the webhook uses.
policy::ImageFactsMap fetchFacts(const policy::ReviewPlan& wanted, service::FetcherOptions options,
                                 Deadline deadline) {
  policy::ImageFactsMap facts;
  if (wanted.images.empty()) return facts;
  std::cerr << "imagegate audit: fetching the facts of " << wanted.images.size() << " image"
            << (wanted.images.size() == 1 ? "" : "s") << "\n";
  service::FactsFetcher fetcher(std::move(options));
  const std::vector<image::ImageRef> toFetch = fetcher.lookUpKnown(wanted, facts);
  fetcher.fetch(wanted, toFetch, deadline, facts);
  return facts;
}

int runAudit(const AuditFlags& flags) {
  if (flags.output != "table" && flags.output != "json") {
    std::cerr << "imagegate audit: --output must be table or json\n";
    return kExitUsage;
  }
  const auto timeout = parseGoDuration(flags.timeout);
  if (!timeout || timeout->count() == 0) {
    std::cerr << "imagegate audit: --timeout must be a duration such as 5m or 90s\n";
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
    readInputs(flags, auditor);
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
    facts = fetchFacts(wanted, std::move(fetcherOptions), Deadline::after(*timeout));
  }
  const audit::Report report = auditor.evaluate(facts);
  if (flags.output == "json") {
    std::cout << audit::renderJson(report).dump(2, ' ', false,
                                                nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << audit::renderTable(report);
  }
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
      "output", po::value(&flags.output)->default_value("table"), "table or json")(
      "offline", po::bool_switch(&flags.offline),
      "fetch nothing: rules that need image facts are judged by each policy's onFetchError")(
      "timeout", po::value(&flags.timeout)->default_value("5m"),
      "fetching every image's facts must end within this")(
      "max-input-bytes",
      po::value(&flags.maxInputBytes)->default_value(std::size_t{256} << 20, "256MiB"),
      "all inputs together; parsing holds several times this in memory")(
      "input", po::value(&flags.inputs), "kubectl get -o json output: FILE..., or - for stdin");
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
