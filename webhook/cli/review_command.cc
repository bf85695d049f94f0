#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "cli/wiring.h"
#include "common/deadline.h"
#include "common/error.h"
#include "common/log.h"
#include "service/admission_service.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: imagegate review [--policy PATH] [--registry-config FILE] [FILE|-]\n"
    "\n"
    "Answers one AdmissionReview (from FILE, or stdin when FILE is '-' or absent) exactly as\n"
    "POST /validate would, and prints the response body on stdout.\n"
    "Exit code 0 allowed, 1 denied, 2 unanswerable input or unloadable policies.\n";

// The same budget the server gives a review when the API server sends no ?timeout=.
constexpr auto kReviewBudget = std::chrono::seconds(10);

std::optional<std::string> readInput(const std::string& file) {
  if (file.empty() || file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int reviewCommand(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")(
      "policy", po::value<std::string>()->default_value(defaultPolicyPath(), "policies if present"),
      "policy file or directory")("log-level", po::value<std::string>()->default_value("error"),
                                  "debug, info, warn or error (logs go to stderr)")(
      "registry-config", po::value<std::string>()->default_value(""),
      "registry settings YAML (platform, credentials, CAs, timeouts)")(
      "input", po::value<std::string>()->default_value("-"), "AdmissionReview file, or -");
  po::positional_options_description positional;
  positional.add("input", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate review: " << e.what() << "\n\n" << kUsage << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << options;
    return kExitOk;
  }
  const auto level = parseLogLevel(vm["log-level"].as<std::string>());
  if (!level) {
    std::cerr << "imagegate review: --log-level must be debug, info, warn or error\n";
    return kExitUsage;
  }
  log::setLevel(*level);
  const std::string policyPath = vm["policy"].as<std::string>();
  if (policyPath.empty()) {
    std::cerr << "imagegate review: --policy is required (no ./policies here)\n";
    return kExitUsage;
  }
  const std::string file = vm["input"].as<std::string>();
  const auto body = readInput(file);
  if (!body) {
    std::cerr << "imagegate review: cannot read " << file << "\n";
    return kExitUsage;
  }
  const auto policies = loadPoliciesOrReport(policyPath);
  if (!policies) return kExitUsage;

  service::ServiceOptions serviceOptions;
  try {
    serviceOptions.facts = makeFetcherOptions(vm["registry-config"].as<std::string>());
  } catch (const Error& e) {
    std::cerr << "imagegate review: " << e.what() << "\n";
    return kExitUsage;
  }
  const service::AdmissionService service(policies, std::move(serviceOptions));
  const service::ReviewOutcome outcome = service.review(*body, Deadline::after(kReviewBudget));
  if (!outcome.answered) {
    std::cerr << "imagegate review: HTTP " << outcome.reply.status << ": " << outcome.reply.body;
    return kExitUsage;
  }
  std::cout << outcome.reply.body << "\n";
  return outcome.allowed ? kExitOk : kExitViolations;
}

}  // namespace imagegate::cli
