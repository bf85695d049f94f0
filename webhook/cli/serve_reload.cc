#include "cli/serve_reload.h"

#include "common/error.h"
#include "common/log.h"
#include "metrics/process_metrics.h"
#include "policy/load_problem.h"
#include "policy/loader.h"

namespace imagegate::cli {
namespace {

/// Loads the policy set whole, or throws naming every problem (file:line:col: message).
std::shared_ptr<const policy::PolicySet> loadPolicySet(const std::string& path) {
  try {
    return std::make_shared<const policy::PolicySet>(policy::loadPolicies(path));
  } catch (const policy::PolicyLoadError& e) {
    std::string problems;
    for (const auto& problem : e.problems())
      problems += (problems.empty() ? "" : "; ") + problem.str();
    throw Error("invalid policies in " + path + ": " + problems);
  }
}

/// The reloader's watch names, as imagegate_reloads_total's `what` label spells them.
std::string_view reloadLabel(const std::string& kind) {
  if (kind == "policies") return "policy";
  if (kind == "registry-config") return "registry_config";
  return kind;
}

}  // namespace

void onReload(const std::string& kind, bool ok) {
  metrics::recordReload(reloadLabel(kind), ok);
  log::debug("reload outcome", {{"kind", kind}, {"ok", ok}});
}

std::unique_ptr<Reloader> startReloading(const ReloadPaths& paths, server::Server& server,
                                         service::AdmissionService& service,
                                         std::shared_ptr<ReloadableRegistry> registry,
                                         std::shared_ptr<PolicyRevision> revision,
                                         std::chrono::milliseconds interval) {
  std::vector<Reloader::Watch> watches;
  watches.push_back(
      {"certificate",
       [paths] {
         return std::vector<std::string>{paths.certFile, paths.keyFile};
       },
       [paths, &server] {
         server.reloadCertificate(paths.certFile, paths.keyFile);
         log::info("certificate reloaded",
                   {{"certFile", paths.certFile}, {"notAfter", server.certificateNotAfter()}});
       }});
  watches.push_back(
      {"policies", [paths] { return policyFiles(paths.policyPath); },
       [paths, &service, revision] {
         const std::vector<std::string> files = policyFiles(paths.policyPath);
         const std::string loadedRevision = shortRevision(files);
         auto policies = loadPolicySet(paths.policyPath);
         const std::size_t count = policies->policies.size();
         service.setPolicies(std::move(policies));
         revision->set(loadedRevision);
         log::info("policies reloaded",
                   {{"path", paths.policyPath}, {"policies", count}, {"revision", loadedRevision}});
       }});
  if (!paths.registryConfig.empty()) {
    watches.push_back(
        {"registry-config", [paths] { return registryConfigFiles(paths.registryConfig); },
         [paths, registry] {
           CacheParts parts;
           const service::FetcherOptions built =
               makeFetcherOptions(paths.registryConfig, "", &parts);
           registry->replace(built, std::move(parts));
           // The platform picked from indexes is the fetcher's, fixed at start-up.
           if (built.platform.str() != registry->platform().str()) {
             log::warn(
                 "the registry config's platform applies after a restart",
                 {{"platform", registry->platform().str()}, {"configured", built.platform.str()}});
           }
           log::info("registry config reloaded", {{"path", paths.registryConfig}});
         }});
  }
  return std::make_unique<Reloader>(std::move(watches), interval, onReload);
}

}  // namespace imagegate::cli
