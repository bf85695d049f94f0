#pragma once

#include <map>
#include <string>

#include "registry/local_sources.h"
#include "service/facts_fetcher.h"

// The one place that builds the real implementations (registry client, cache) from flags and
// files; serve, review and check all get their image facts through what it builds.
namespace imagegate::cli {

/// A digest-keyed cache over the Distribution API client, configured from the --registry-config
/// file (empty path: defaults, anonymous access), on `platformFlag` when it is not empty, else
/// the file's platform. Throws imagegate::Error naming the file or flag and the problem.
service::FetcherOptions makeFetcherOptions(const std::string& registryConfigPath,
                                           const std::string& platformFlag = "");

/// Puts images read from disk (oci:, docker-archive:) in front of `fetcher.registry`: their judged
/// references are answered from their files, every other reference by the registry as before.
void routeLocalImages(service::FetcherOptions& fetcher,
                      std::map<image::ImageRef, registry::LocalImagePtr> images);

}  // namespace imagegate::cli
