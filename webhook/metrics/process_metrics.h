#pragma once

#include <string_view>

// Metrics about the process itself and its reloads: declared here so that they appear (at 0)
// from the first scrape, before anything happened.
namespace imagegate::metrics {

/// imagegate_build_info{version} 1 and imagegate_process_start_time_seconds, and the reload
/// counters at 0. Call once at start (serve).
void registerProcessMetrics(std::string_view version);

/// Counts one reload attempt of `what` ("policy", "certificate" or "registry_config"; any other
/// value is counted as "other") in imagegate_reloads_total{what, result="success"|"failure"}.
void recordReload(std::string_view what, bool ok);

}  // namespace imagegate::metrics
