#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/version.h"
#include "common/log.h"
#include "policy/model.h"

// The subcommands of the `imagegate` binary. Each takes the arguments after its own name and
// returns the process exit code.
namespace imagegate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitViolations = 1;   ///< `review` denied the object, `audit` would deny.
inline constexpr int kExitUsage = 2;        ///< Bad flags, unloadable policies or certificates.
inline constexpr int kExitFetchFailed = 3;  ///< `check`/`audit` could not fetch an image.

int serveCommand(const std::vector<std::string>& args);
int reviewCommand(const std::vector<std::string>& args);
int policyCommand(const std::vector<std::string>& args);
int checkCommand(const std::vector<std::string>& args);
int layerCommand(const std::vector<std::string>& args);
int auditCommand(const std::vector<std::string>& args);

/// `policies` in the working directory when it exists, so `--policy` can be left out there.
std::string defaultPolicyPath();

/// "debug", "info", "warn" or "error".
std::optional<log::Level> parseLogLevel(const std::string& name);

/// Loads policies; on failure prints every problem as "file:line:col: message" to stderr and
/// returns nullptr.
std::shared_ptr<const policy::PolicySet> loadPoliciesOrReport(const std::string& path);

}  // namespace imagegate::cli
