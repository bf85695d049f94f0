#include "registry/registry_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/duration.h"
#include "common/text.h"

namespace imagegate::registry {
namespace {

constexpr std::size_t kMaxConfigFileBytes = 1024 * 1024;

// Parsing context: every error carries file:line:column so the operator can go straight there.
class Reader {
 public:
  Reader(std::string source, std::string baseDir)
      : source_(std::move(source)), baseDir_(std::move(baseDir)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    throw Error(source_ + ":" + std::to_string(mark.line + 1) + ":" +
                std::to_string(mark.column + 1) + ": " + what);
  }

  void requireMap(const YAML::Node& node, const std::string& what) const {
    if (!node.IsMap()) {
      fail(node.Mark(), what + " must be a mapping");
    }
  }

  // Fails on the first key not in `allowed`, listing those that are.
  void checkKeys(const YAML::Node& node, std::initializer_list<std::string_view> allowed,
                 const std::string& what) const {
    for (const auto& item : node) {
      const std::string key = scalar(item.first, what + " key");
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const std::string_view name : allowed) {
          list += (list.empty() ? "" : ", ") + std::string(name);
        }
        fail(item.first.Mark(),
             "unknown field \"" + key + "\" in " + what + " (allowed: " + list + ")");
      }
    }
  }

  std::string scalar(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) {
      fail(node.Mark(), what + " must be a string");
    }
    return node.Scalar();
  }

  bool boolean(const YAML::Node& node, const std::string& what) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(node.Mark(), what + " must be true or false");
    }
    return value;
  }

  std::chrono::milliseconds duration(const YAML::Node& node, const std::string& what) const {
    const std::string text = scalar(node, what);
    const auto parsed = parseGoDuration(text);
    if (!parsed || parsed->count() <= 0) {
      fail(node.Mark(), what + " \"" + text + "\" is not a positive duration such as 2s or 500ms");
    }
    return *parsed;
  }

  std::string path(const YAML::Node& node, const std::string& what) const {
    const std::string text = scalar(node, what);
    if (text.empty()) {
      fail(node.Mark(), what + " must not be empty");
    }
    if (baseDir_.empty() || std::filesystem::path(text).is_absolute()) {
      return text;
    }
    return (std::filesystem::path(baseDir_) / text).lexically_normal().string();
  }

 private:
  std::string source_;
  std::string baseDir_;
};

bool isHostPort(const std::string& host) {
  return !host.empty() && host.size() <= 255 &&
         std::all_of(host.begin(), host.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' ||
                  c == '_';
         });
}

void readTimeouts(const Reader& reader, const YAML::Node& node, RegistryConfig& config) {
  reader.requireMap(node, "timeouts");
  reader.checkKeys(node, {"connect", "request"}, "timeouts");
  if (node["connect"]) {
    config.connectTimeout = reader.duration(node["connect"], "timeouts.connect");
  }
  if (node["request"]) {
    config.requestTimeout = reader.duration(node["request"], "timeouts.request");
  }
}

RegistryHostConfig readHost(const Reader& reader, const YAML::Node& node) {
  reader.requireMap(node, "each registries entry");
  reader.checkKeys(node, {"host", "caFile", "insecure"}, "registries entry");
  RegistryHostConfig host;
  if (!node["host"]) {
    reader.fail(node.Mark(), "registries entry has no host");
  }
  host.host = asciiLower(reader.scalar(node["host"], "host"));
  if (!isHostPort(host.host)) {
    reader.fail(node["host"].Mark(), "host \"" + host.host +
                                         "\" must be host[:port] as in image references, without "
                                         "scheme or path");
  }
  if (node["caFile"]) {
    host.caFile = reader.path(node["caFile"], "caFile");
  }
  if (node["insecure"]) {
    host.insecure = reader.boolean(node["insecure"], "insecure");
  }
  return host;
}

void readRegistries(const Reader& reader, const YAML::Node& node, RegistryConfig& config) {
  if (node.IsNull()) {
    return;
  }
  if (!node.IsSequence()) {
    reader.fail(node.Mark(), "registries must be a list");
  }
  std::set<std::string> seen;
  for (const auto& item : node) {
    RegistryHostConfig host = readHost(reader, item);
    if (!seen.insert(host.host).second) {
      reader.fail(item.Mark(), "registry \"" + host.host + "\" is listed twice");
    }
    config.registries.push_back(std::move(host));
  }
}

void readRoot(const Reader& reader, const YAML::Node& root, RegistryConfig& config) {
  reader.requireMap(root, "the registry config");
  reader.checkKeys(root, {"platform", "dockerConfig", "timeouts", "registries"},
                   "the registry config");
  if (const YAML::Node platform = root["platform"]) {
    try {
      config.platform = image::Platform::parse(reader.scalar(platform, "platform"));
    } catch (const Error& e) {
      reader.fail(platform.Mark(), e.what());
    }
  }
  if (root["dockerConfig"]) {
    config.dockerConfig = reader.path(root["dockerConfig"], "dockerConfig");
  }
  if (root["timeouts"]) {
    readTimeouts(reader, root["timeouts"], config);
  }
  if (root["registries"]) {
    readRegistries(reader, root["registries"], config);
  }
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
  const Reader reader(sourceName, baseDir);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    reader.fail(e.mark, e.msg);
  }
  RegistryConfig config;
  if (!root.IsDefined() || root.IsNull()) {
    return config;  // an empty file means all defaults
  }
  try {
    readRoot(reader, root, config);
  } catch (const YAML::Exception& e) {
    reader.fail(e.mark, e.msg);
  }
  return config;
}

RegistryConfig RegistryConfig::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw Error("cannot read registry config " + path);
  }
  std::string text(kMaxConfigFileBytes + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > kMaxConfigFileBytes) {
    throw Error("registry config " + path + " is larger than 1 MiB");
  }
  return parse(text, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace imagegate::registry
