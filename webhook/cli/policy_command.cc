#include <boost/program_options.hpp>
#include <exception>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "policy/loader.h"

namespace imagegate::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kLintUsage =
    "usage: imagegate policy lint PATH\n"
    "\n"
    "Loads the ImagePolicy file or directory PATH and prints every problem as\n"
    "file:line:column: message. Exit code 0 when all policies are valid, 2 otherwise.\n";

int lint(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()("help,h", "show this help")("path", po::value<std::string>(),
                                                    "policy file or directory");
  po::positional_options_description positional;
  positional.add("path", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "imagegate policy lint: " << e.what() << "\n\n" << kLintUsage;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << kLintUsage;
    return kExitOk;
  }
  if (!vm.count("path")) {
    std::cerr << "imagegate policy lint: missing PATH\n\n" << kLintUsage;
    return kExitUsage;
  }
  const std::string path = vm["path"].as<std::string>();
  try {
    const policy::PolicySet set = policy::loadPolicies(path);
    std::cout << set.policies.size() << " policies OK\n";
    return kExitOk;
  } catch (const policy::PolicyLoadError& e) {
    // Lint's findings are its output, so they go to stdout; the summary goes to stderr.
    for (const auto& problem : e.problems()) std::cout << problem.str() << "\n";
    std::cerr << "imagegate policy lint: " << e.problems().size() << " problem(s) in " << path
              << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "imagegate policy lint: " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace

std::string defaultPolicyPath() {
  std::error_code ec;
  return std::filesystem::exists("policies", ec) ? "policies" : "";
}

std::shared_ptr<const policy::PolicySet> loadPoliciesOrReport(const std::string& path) {
  try {
    return std::make_shared<const policy::PolicySet>(policy::loadPolicies(path));
  } catch (const policy::PolicyLoadError& e) {
    for (const auto& problem : e.problems()) std::cerr << problem.str() << "\n";
    std::cerr << "imagegate: cannot load policies from " << path << "\n";
  } catch (const std::exception& e) {
    std::cerr << "imagegate: cannot load policies from " << path << ": " << e.what() << "\n";
  }
  return nullptr;
}

int policyCommand(const std::vector<std::string>& args) {
  if (!args.empty() && (args.front() == "--help" || args.front() == "-h")) {
    std::cout << kLintUsage;
    return kExitOk;
  }
  if (args.empty() || args.front() != "lint") {
    std::cerr << "imagegate policy: expected the subcommand 'lint'\n\n" << kLintUsage;
    return kExitUsage;
  }
  return lint(std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace imagegate::cli
