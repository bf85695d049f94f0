#include "metrics/process_metrics.h"

#include <array>
#include <chrono>
#include <string>

#include "metrics/metrics.h"

namespace imagegate::metrics {
namespace {

constexpr std::array<std::string_view, 3> kReloadable = {"policy", "certificate",
                                                         "registry_config"};

CounterFamily& reloads() {
  static CounterFamily& family = defaultRegistry().counter(
      "imagegate_reloads_total",
      "Reloads of files watched at run time, by what was reloaded and whether it was taken",
      {"what", "result"}, FamilyOptions{16, {}});
  return family;
}

std::string_view known(std::string_view what) {
  for (std::string_view name : kReloadable) {
    if (name == what) return name;
  }
  return kFoldedValue;
}

}  // namespace

void registerProcessMetrics(std::string_view version) {
  Registry& registry = defaultRegistry();
  registry
      .gauge("imagegate_build_info", "Always 1; the version label says which imagegate runs",
             {"version"}, FamilyOptions{4, {}})
      .labels({version})
      .set(1);
  const auto sinceEpoch = std::chrono::system_clock::now().time_since_epoch();
  registry
      .gauge("imagegate_process_start_time_seconds",
             "When the process started, in seconds since the Unix epoch")
      .get()
      .set(std::chrono::duration<double>(sinceEpoch).count());
  for (std::string_view what : kReloadable) {
    reloads().labels({what, "success"});
    reloads().labels({what, "failure"});
  }
}

void recordReload(std::string_view what, bool ok) {
  reloads().labels({known(what), ok ? "success" : "failure"}).inc();
}

}  // namespace imagegate::metrics
