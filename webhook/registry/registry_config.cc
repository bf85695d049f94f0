#include "registry/registry_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "common/bounded_file.h"
#include "common/duration.h"
#include "common/load_problem.h"
#include "common/quantity.h"
#include "common/text.h"
#include "common/yaml_fields.h"

namespace imagegate::registry {
namespace {

constexpr std::size_t kMaxConfigFileBytes = 1024 * 1024;

// Every reader below reports its problems and leaves the default in place, so that one run shows
// the operator every mistake in the file; parse() throws once reading is done.

bool isHostPort(const std::string& host) {
  return !host.empty() && host.size() <= 255 &&
         std::all_of(host.begin(), host.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' ||
                  c == '_';
         });
}

std::optional<std::chrono::milliseconds> readDuration(const Fields& fields, std::string_view key) {
  const auto text = fields.string(key);
  if (!text) return std::nullopt;
  const auto parsed = parseGoDuration(text->text);
  if (!parsed || parsed->count() <= 0) {
    fields.report(text->mark, fields.pathOf(key) + " \"" + text->text +
                                  "\" is not a positive duration such as 2s or 500ms");
    return std::nullopt;
  }
  return *parsed;
}

/// A file path; relative ones resolve against `baseDir` (the config file's directory) so that the
/// config means the same whatever directory imagegate is started from.
std::optional<std::string> readPath(const Fields& fields, std::string_view key,
                                    const std::string& baseDir) {
  const auto text = fields.string(key);
  if (!text) return std::nullopt;
  if (text->text.empty()) {
    fields.report(text->mark, fields.pathOf(key) + " must not be empty");
    return std::nullopt;
  }
  if (baseDir.empty() || std::filesystem::path(text->text).is_absolute()) return text->text;
  return (std::filesystem::path(baseDir) / text->text).lexically_normal().string();
}

void readTimeouts(const Fields& root, RegistryConfig& config) {
  const Fields timeouts = root.sub("timeouts", Fields::Keys{"connect", "request"});
  if (auto connect = readDuration(timeouts, "connect")) config.connectTimeout = *connect;
  if (auto request = readDuration(timeouts, "request")) config.requestTimeout = *request;
}

std::optional<RegistryHostConfig> readHost(const Fields& entry, const std::string& baseDir) {
  RegistryHostConfig host;
  if (auto caFile = readPath(entry, "caFile", baseDir)) host.caFile = *caFile;
  if (auto insecure = entry.boolean("insecure")) host.insecure = *insecure;
  if (!entry.required("host")) return std::nullopt;
  const auto name = entry.string("host");
  if (!name) return std::nullopt;
  host.host = asciiLower(name->text);
  if (!isHostPort(host.host)) {
    entry.report(name->mark, entry.pathOf("host") + " \"" + name->text +
                                 "\" must be host[:port] as in image references, without scheme "
                                 "or path");
    return std::nullopt;
  }
  return host;
}

void readRegistries(const Fields& root, const std::string& baseDir, RegistryConfig& config) {
  const auto list = root.value("registries");
  if (!list) return;
  if (!list->IsSequence()) {
    root.report(list->Mark(),
                "registries must be a list of entries with host, caFile and "
                "insecure, got " +
                    describeType(*list));
    return;
  }
  const Fields::Keys allowed = {"host", "caFile", "insecure"};
  std::map<std::string, YAML::Mark> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const YAML::Node item = (*list)[i];
    const Fields entry(item, indexed("registries", i), allowed, root.diag(), item.Mark());
    if (!entry.ok()) continue;
    auto host = readHost(entry, baseDir);
    if (!host) continue;
    const auto [first, inserted] = seen.emplace(host->host, item.Mark());
    if (!inserted) {
      entry.report(item.Mark(), "registry \"" + host->host + "\" is listed twice (first at " +
                                    root.diag().where(first->second) + ")");
      continue;
    }
    config.registries.push_back(std::move(*host));
  }
}

std::optional<std::uint64_t> readBytes(const Fields& fields, std::string_view key) {
  const auto text = fields.string(key);
  if (!text) return std::nullopt;
  const auto parsed = parseByteQuantity(text->text);
  if (!parsed || *parsed == 0) {
    fields.report(text->mark, fields.pathOf(key) + " \"" + text->text +
                                  "\" is not a positive byte quantity such as 64Mi or 1Gi");
    return std::nullopt;
  }
  return *parsed;
}

void readRedis(const Fields& cache, const std::string& baseDir, CacheConfig::Redis& redis) {
  const Fields fields =
      cache.sub("redis", Fields::Keys{"address", "passwordFile", "keyPrefix", "timeout", "tls"});
  if (const auto address = fields.string("address")) redis.address = address->text;
  if (auto passwordFile = readPath(fields, "passwordFile", baseDir)) {
    redis.passwordFile = *passwordFile;
  }
  if (const auto prefix = fields.string("keyPrefix")) redis.keyPrefix = prefix->text;
  if (auto timeout = readDuration(fields, "timeout")) redis.timeout = *timeout;
  if (const auto tls = fields.boolean("tls"); tls && *tls) {
    fields.report(fields.keyMark("tls"),
                  fields.pathOf("tls") +
                      ": TLS to Redis is not supported (imagegate uses Debian's hiredis 0.14, "
                      "which has no TLS); reach Redis over a trusted network or a TLS sidecar "
                      "such as stunnel on localhost, and set tls: false");
  }
  if (redis.address.empty() && (fields.has("passwordFile") || fields.has("keyPrefix"))) {
    fields.report(fields.mark(),
                  fields.pathOf("address") + " is required with other redis settings");
  }
}

void readCache(const Fields& root, const std::string& baseDir, CacheConfig& cache) {
  const Fields fields = root.sub(
      "cache", Fields::Keys{"memory", "layerIndexMemory", "tagTtl", "dir", "dirBytes", "redis"});
  if (auto bytes = readBytes(fields, "memory")) cache.memoryBytes = *bytes;
  if (auto bytes = readBytes(fields, "layerIndexMemory")) cache.layerIndexMemoryBytes = *bytes;
  if (auto ttl = readDuration(fields, "tagTtl")) cache.tagTtl = *ttl;
  if (auto dir = readPath(fields, "dir", baseDir)) cache.dir = *dir;
  if (auto bytes = readBytes(fields, "dirBytes")) cache.dirBytes = *bytes;
  readRedis(fields, baseDir, cache.redis);
}

/// A positive whole number within [1, max].
std::optional<std::uint64_t> readCount(const Fields& fields, std::string_view key,
                                       std::uint64_t max) {
  const auto text = fields.string(key);
  if (!text) return std::nullopt;
  const std::string& digits = text->text;
  const bool allDigits = !digits.empty() && digits.size() <= 19 &&
                         std::all_of(digits.begin(), digits.end(),
                                     [](unsigned char c) { return std::isdigit(c) != 0; });
  const std::uint64_t value = allDigits ? std::stoull(digits) : 0;
  if (value == 0 || value > max) {
    fields.report(text->mark, fields.pathOf(key) + " \"" + digits +
                                  "\" is not a whole number from 1 to " + std::to_string(max));
    return std::nullopt;
  }
  return value;
}

void readLayerLimits(const Fields& root, LayerLimitsConfig& layers) {
  const Fields fields = root.sub(
      "layers", Fields::Keys{"maxUncompressed", "maxEntries", "maxPathLength", "maxIndex"});
  if (auto bytes = readBytes(fields, "maxUncompressed")) layers.maxUncompressedBytes = *bytes;
  if (auto count = readCount(fields, "maxEntries", UINT32_MAX)) layers.maxEntries = *count;
  // The index stores path lengths in 16 bits.
  if (auto count = readCount(fields, "maxPathLength", UINT16_MAX)) layers.maxPathLength = *count;
  if (auto bytes = readBytes(fields, "maxIndex")) layers.maxIndexBytes = *bytes;
}

void readRoot(const Fields& root, const std::string& baseDir, RegistryConfig& config) {
  if (const auto platform = root.string("platform")) {
    try {
      config.platform = image::Platform::parse(platform->text);
    } catch (const Error& e) {
      root.report(platform->mark, e.what());
    }
  }
  if (auto dockerConfig = readPath(root, "dockerConfig", baseDir)) {
    config.dockerConfig = *dockerConfig;
  }
  readTimeouts(root, config);
  readRegistries(root, baseDir, config);
  readCache(root, baseDir, config.cache);
  readLayerLimits(root, config.layers);
}

}  // namespace

const RegistryHostConfig* RegistryConfig::find(std::string_view host) const {
  const std::string wanted = asciiLower(std::string(host));
  for (const RegistryHostConfig& entry : registries) {
    if (entry.host == wanted) {
      return &entry;
    }
  }
  return nullptr;
}

RegistryConfig RegistryConfig::parse(std::string_view yaml, const std::string& sourceName,
                                     const std::string& baseDir) {
  std::vector<LoadProblem> problems;
  Diagnostics diag(sourceName, problems, "the registry config");
  YAML::Node document;
  try {
    document = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {  // syntax errors, and nesting too deep to parse
    diag.report(e.mark, "YAML syntax error: " + e.msg);
    throw LoadError(std::move(problems));
  }
  RegistryConfig config;
  // An empty file means all defaults.
  const Fields root(
      document.IsDefined() ? document : YAML::Node(), "",
      Fields::Keys{"platform", "dockerConfig", "timeouts", "registries", "cache", "layers"}, diag);
  readRoot(root, baseDir, config);
  if (!problems.empty()) {
    // Fields are read in code order, not file order; the operator reads the file top to bottom.
    std::stable_sort(problems.begin(), problems.end(),
                     [](const LoadProblem& a, const LoadProblem& b) {
                       return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                     });
    throw LoadError(std::move(problems));
  }
  return config;
}

RegistryConfig RegistryConfig::load(const std::string& path) {
  const std::string text = readBoundedFile(path, kMaxConfigFileBytes, "registry config");
  return parse(text, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace imagegate::registry
