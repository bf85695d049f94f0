#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/version.h"

namespace {

constexpr const char* kUsage =
    "usage: imagegate <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve          serve the validating webhook over HTTPS (POST /validate)\n"
    "  review [FILE]  answer one AdmissionReview from FILE or stdin, as the server would\n"
    "  policy lint P  check the policy file or directory P\n"
    "  check IMAGE... fetch images from their registries and evaluate the image-level rules\n"
    "  layer scan F   index the layer blob F (tar, gzip, zstd): files, secrets, setuid\n"
    "  audit FILE|-   review what `kubectl get ... -A -o json` printed: what would be denied\n"
    "\n"
    "  imagegate <command> --help   options of a command\n"
    "  imagegate --version\n"
    "\n"
    "exit codes: 0 success, 1 policy violations (review denied), 2 usage or configuration "
    "error, 3 (check, audit) an image could not be fetched\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace imagegate::cli;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string_view command = args.front();
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return kExitOk;
    }
    if (command == "--version" || command == "version") {
      std::cout << "imagegate " << imagegate::cli::kVersion << "\n";
      return kExitOk;
    }
    if (command == "serve") return serveCommand(rest);
    if (command == "review") return reviewCommand(rest);
    if (command == "policy") return policyCommand(rest);
    if (command == "check") return checkCommand(rest);
    if (command == "layer") return layerCommand(rest);
    if (command == "audit") return auditCommand(rest);
  } catch (const std::exception& e) {
    // Subcommands report expected failures themselves; this is the last line of defence.
    std::cerr << "imagegate: " << e.what() << "\n";
    return kExitUsage;
  }
  std::cerr << "imagegate: unknown command '" << command << "'\n\n" << kUsage;
  return kExitUsage;
}
