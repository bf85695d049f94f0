#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "cli/reloader.h"
#include "cli/wiring.h"
#include "server/server.h"
#include "service/admission_service.h"

// What `imagegate serve` reloads while it runs, and the one place each reload outcome passes.
namespace imagegate::cli {

struct ReloadPaths {
  std::string certFile;
  std::string keyFile;
  std::string policyPath;
  std::string registryConfig;  ///< Empty: none given, nothing to watch.
};

/// The revision of the policies in force, for /readyz; written by reloads, read by probes.
class PolicyRevision {
 public:
  explicit PolicyRevision(std::string revision) : revision_(std::move(revision)) {}
  void set(std::string revision) {
    std::lock_guard lock(mutex_);
    revision_ = std::move(revision);
  }
  std::string get() const {
    std::lock_guard lock(mutex_);
    return revision_;
  }

 private:
  mutable std::mutex mutex_;
  std::string revision_;
};

/// Every reload attempt's outcome: kind is "certificate", "policies" or "registry-config".
/// METRICS: the single call site for imagegate_reloads_total{kind, result} (connected by the
/// metrics module).
void onReload(const std::string& kind, bool ok);

/// Starts polling the files of `paths` every `interval`: a changed certificate and key go to
/// `server` (new handshakes), a changed policy set to `service` (new reviews) and `revision`, a
/// changed registry config (or the Docker config and CA files it names) to `registry`.
/// An invalid new set or pair is rejected whole with an error log line. Stop it (destroy it)
/// before the server and service go.
std::unique_ptr<Reloader> startReloading(const ReloadPaths& paths, server::Server& server,
                                         service::AdmissionService& service,
                                         std::shared_ptr<ReloadableRegistry> registry,
                                         std::shared_ptr<PolicyRevision> revision,
                                         std::chrono::milliseconds interval);

}  // namespace imagegate::cli
