#include "registry/manifest.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/json_depth.h"
#include "common/json_parse.h"
#include "common/text.h"
#include "registry/digest.h"

namespace imagegate::registry {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxJsonDepth = 64;
constexpr std::string_view kSchema1Types[] = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws"};
constexpr std::string_view kImageConfigTypes[] = {"application/vnd.oci.image.config.v1+json",
                                                  "application/vnd.docker.container.image.v1+json"};

[[noreturn]] void invalid(const std::string& message) {
  throw FetchError(FetchError::Kind::kInvalidContent, message);
}

json parseJson(std::string_view body, std::string_view what, std::size_t limit) {
  if (body.size() > limit) {
    invalid(std::string(what) + " is " + std::to_string(body.size()) +
            " bytes, over the limit of " + std::to_string(limit));
  }
  if (jsonNestingExceeds(body, kMaxJsonDepth)) {
    invalid(std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  JsonProblem problem;
  std::optional<json> document = tryParseJson(body, problem);
  if (!document) invalid(std::string(what) + " is not valid JSON: " + problem.reason);
  if (!document->is_object()) invalid(std::string(what) + " is not a JSON object");
  return std::move(*document);
}

const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string optionalString(const json& object, const char* key, const std::string& path) {
  const json* value = member(object, key);
  if (value == nullptr || value->is_null()) {
    return "";
  }
  if (!value->is_string()) {
    invalid(path + key + " must be a string, not " + value->type_name());
  }
  return value->get<std::string>();
}

std::string requiredString(const json& object, const char* key, const std::string& path) {
  if (member(object, key) == nullptr) {
    invalid(path + key + " is missing");
  }
  return optionalString(object, key, path);
}

std::vector<std::string> stringArray(const json& object, const char* key, const std::string& path) {
  const json* value = member(object, key);
  if (value == nullptr || value->is_null()) {
    return {};
  }
  if (!value->is_array()) {
    invalid(path + key + " must be an array of strings, not " + value->type_name());
  }
  std::vector<std::string> items;
  for (const json& item : *value) {
    if (!item.is_string()) {
      invalid(path + key + " must contain only strings, found " + item.type_name());
    }
    items.push_back(item.get<std::string>());
  }
  return items;
}

const json* optionalObject(const json& object, const char* key, const std::string& path) {
  const json* value = member(object, key);
  if (value == nullptr || value->is_null()) {
    return nullptr;
  }
  if (!value->is_object()) {
    invalid(path + key + " must be an object, not " + value->type_name());
  }
  return value;
}

const json& requiredArray(const json& object, const char* key, const std::string& path,
                          std::size_t limit) {
  const json* value = member(object, key);
  if (value == nullptr) {
    invalid(path + key + " is missing");
  }
  if (!value->is_array()) {
    invalid(path + key + " must be an array, not " + value->type_name());
  }
  if (value->size() > limit) {
    invalid(path + key + " has " + std::to_string(value->size()) + " entries, over the limit of " +
            std::to_string(limit));
  }
  return *value;
}

image::Descriptor parseDescriptor(const json& value, const std::string& path) {
  if (!value.is_object()) {
    invalid(path + " must be an object, not " + std::string(value.type_name()));
  }
  image::Descriptor descriptor;
  descriptor.mediaType = requiredString(value, "mediaType", path + ".");
  descriptor.digest = requiredString(value, "digest", path + ".");
  if (!parseDigest(descriptor.digest)) {
    invalid(path + ".digest \"" + descriptor.digest.substr(0, 80) +
            "\" is not a sha256 or sha512 digest");
  }
  const json* size = member(value, "size");
  if (size == nullptr) {
    invalid(path + ".size is missing");
  }
  if (!size->is_number_unsigned()) {
    invalid(path + ".size must be a non-negative integer");
  }
  descriptor.size = size->get<std::uint64_t>();
  return descriptor;
}

void checkSchemaVersion(const json& document) {
  const json* version = member(document, "schemaVersion");
  if (version == nullptr) {
    invalid("manifest has no schemaVersion");
  }
  if (*version == 1) {
    invalid("schema 1 manifests are not supported (push the image again with a current client)");
  }
  if (!version->is_number_integer() || *version != 2) {
    invalid("manifest schemaVersion must be 2, not " + version->dump());
  }
}

bool isManifestType(std::string_view type) {
  return type == media::kOciIndex || type == media::kOciManifest ||
         type == media::kDockerManifestList || type == media::kDockerManifest;
}

bool isIndexType(std::string_view type) {
  return type == media::kOciIndex || type == media::kDockerManifestList;
}

std::string essence(std::string_view contentType) {
  std::string_view type = contentType.substr(0, contentType.find(';'));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) {
    type.remove_suffix(1);
  }
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.front()))) {
    type.remove_prefix(1);
  }
  return asciiLower(type);
}

// Decides the manifest's media type from the transport header, the body's own claim and, for
// umoci-style manifests that carry neither, the document's shape.
std::string resolveMediaType(const json& document, std::string_view contentType) {
  const std::string header = essence(contentType);
  if (std::find(std::begin(kSchema1Types), std::end(kSchema1Types), header) !=
      std::end(kSchema1Types)) {
    invalid("schema 1 manifests are not supported (Content-Type " + header + ")");
  }
  const std::string claimed = optionalString(document, "mediaType", "manifest ");
  if (isManifestType(header)) {
    if (!claimed.empty() && claimed != header) {
      invalid("manifest mediaType \"" + claimed.substr(0, 100) +
              "\" contradicts its Content-Type " + header);
    }
    return header;
  }
  if (!claimed.empty()) {
    if (!isManifestType(claimed)) {
      invalid("unsupported manifest media type \"" + claimed.substr(0, 100) + "\"");
    }
    return claimed;
  }
  if (member(document, "manifests") != nullptr) {
    return std::string(media::kOciIndex);
  }
  if (member(document, "config") != nullptr) {
    return std::string(media::kOciManifest);
  }
  invalid("cannot tell the manifest type: no known Content-Type (\"" + header.substr(0, 100) +
          "\"), no mediaType, neither manifests nor config");
}

std::optional<image::Platform> parseEntryPlatform(const json& entry, const std::string& path) {
  const json* platform = optionalObject(entry, "platform", path + ".");
  if (platform == nullptr) {
    return std::nullopt;
  }
  const std::string prefix = path + ".platform.";
  image::Platform result;
  result.os = requiredString(*platform, "os", prefix);
  result.architecture = requiredString(*platform, "architecture", prefix);
  result.variant = optionalString(*platform, "variant", prefix);
  return result;
}

ImageIndex parseIndex(const json& document, std::string mediaType) {
  ImageIndex index;
  index.mediaType = std::move(mediaType);
  const json& manifests = requiredArray(document, "manifests", "index ", kMaxIndexEntries);
  for (std::size_t i = 0; i < manifests.size(); ++i) {
    const std::string path = "index manifests[" + std::to_string(i) + "]";
    IndexEntry entry;
    entry.descriptor = parseDescriptor(manifests[i], path);
    entry.platform = parseEntryPlatform(manifests[i], path);
    // Read leniently: registries serve indexes whose annotations nothing else here looks at.
    const json* annotations = member(manifests[i], "annotations");
    if (annotations != nullptr && annotations->is_object()) {
      for (const auto& [key, value] : annotations->items()) {
        if (value.is_string()) entry.annotations[key] = value.get<std::string>();
      }
    }
    index.manifests.push_back(std::move(entry));
  }
  return index;
}

ImageManifest parseImageManifest(const json& document, std::string mediaType) {
  ImageManifest manifest;
  manifest.mediaType = std::move(mediaType);
  const json* config = member(document, "config");
  if (config == nullptr) {
    invalid("manifest config is missing");
  }
  manifest.config = parseDescriptor(*config, "manifest config");
  if (std::find(std::begin(kImageConfigTypes), std::end(kImageConfigTypes),
                manifest.config.mediaType) == std::end(kImageConfigTypes)) {
    invalid("not a container image: config media type is \"" +
            manifest.config.mediaType.substr(0, 100) + "\"");
  }
  const json& layers = requiredArray(document, "layers", "manifest ", kMaxLayers);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    manifest.layers.push_back(
        parseDescriptor(layers[i], "manifest layers[" + std::to_string(i) + "]"));
  }
  return manifest;
}

// Parses "vN" (or "N") into N; 0 when the variant is not of that form.
int variantNumber(const std::string& variant) {
  std::string_view digits = variant;
  if (digits.starts_with('v')) {
    digits.remove_prefix(1);
  }
  if (digits.empty() || digits.size() > 2 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return 0;
  }
  return std::stoi(std::string(digits));
}

// The platforms a host of `wanted` runs, best first (containerd's platforms.Only).
std::vector<image::Platform> acceptablePlatforms(const image::Platform& wanted) {
  std::vector<image::Platform> accepted{wanted};
  int lowest = 0;
  if (wanted.architecture == "arm") {
    lowest = 5;
  } else if (wanted.architecture == "arm64") {
    lowest = 8;
  } else if (wanted.architecture == "amd64") {
    lowest = 1;
  }
  const int number = wanted.variant.empty() && lowest == 1 ? 1 : variantNumber(wanted.variant);
  for (int n = number - 1; lowest > 0 && n >= lowest; --n) {
    image::Platform older = wanted;
    older.variant = wanted.architecture == "amd64" && n == 1 ? "" : "v" + std::to_string(n);
    accepted.push_back(older);
  }
  return accepted;
}

bool samePlatform(const image::Platform& a, const image::Platform& b) {
  return a.os == b.os && a.architecture == b.architecture && a.variant == b.variant;
}

}  // namespace

std::string manifestAcceptHeader() {
  return std::string(media::kOciManifest) + ", " + std::string(media::kOciIndex) + ", " +
         std::string(media::kDockerManifest) + ", " + std::string(media::kDockerManifestList);
}

ParsedManifest parseManifest(std::string_view body, std::string_view contentType) {
  const json document = parseJson(body, "manifest", kMaxManifestBytes);
  checkSchemaVersion(document);
  std::string mediaType = resolveMediaType(document, contentType);
  if (isIndexType(mediaType)) {
    return parseIndex(document, std::move(mediaType));
  }
  return parseImageManifest(document, std::move(mediaType));
}

image::Platform normalizePlatform(const image::Platform& platform) {
  image::Platform normal{asciiLower(platform.os), asciiLower(platform.architecture),
                         asciiLower(platform.variant)};
  if (normal.os == "macos") {
    normal.os = "darwin";
  }
  const std::string& arch = normal.architecture;
  if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    normal.architecture = "amd64";
    if (normal.variant == "v1" || normal.variant == "1") {
      normal.variant = "";
    }
  } else if (arch == "aarch64" || arch == "arm64") {
    normal.architecture = "arm64";
    normal.variant = normal.variant.empty() || normal.variant == "8" || normal.variant == "v8.0"
                         ? "v8"
                         : normal.variant;
  } else if (arch == "armhf") {
    normal = {normal.os, "arm", "v7"};
  } else if (arch == "armel") {
    normal = {normal.os, "arm", "v6"};
  } else if (arch == "arm") {
    normal.variant = normal.variant.empty() ? "v7" : normal.variant;
  } else if (arch == "i386") {
    normal.architecture = "386";
  }
  if (variantNumber(normal.variant) > 0 && !normal.variant.starts_with('v')) {
    normal.variant = "v" + normal.variant;
  }
  return normal;
}

const IndexEntry& selectPlatform(const ImageIndex& index, const image::Platform& wanted) {
  for (const image::Platform& candidate : acceptablePlatforms(normalizePlatform(wanted))) {
    for (const IndexEntry& entry : index.manifests) {
      if (entry.platform && samePlatform(normalizePlatform(*entry.platform), candidate)) {
        return entry;
      }
    }
  }
  std::vector<std::string> available;
  for (const IndexEntry& entry : index.manifests) {
    // Build attestations are listed as unknown/unknown; they are not runnable platforms.
    if (entry.platform && entry.platform->os != "unknown") {
      const std::string name = entry.platform->str();
      if (std::find(available.begin(), available.end(), name) == available.end()) {
        available.push_back(name);
      }
    }
  }
  std::string list;
  for (const std::string& name : available) {
    list += (list.empty() ? "" : ", ") + name;
  }
  throw FetchError(FetchError::Kind::kNoMatchingPlatform,
                   "the image index has no manifest for " + wanted.str() +
                       " (available: " + (list.empty() ? "none" : list) + ")");
}

image::ImageConfig parseImageConfig(std::string_view body) {
  const json document = parseJson(body, "image config", kMaxConfigBytes);
  image::ImageConfig config;
  config.os = optionalString(document, "os", "image config ");
  config.architecture = optionalString(document, "architecture", "image config ");
  if (const json* runtime = optionalObject(document, "config", "image config ")) {
    const std::string path = "image config config.";
    config.user = optionalString(*runtime, "User", path);
    config.env = stringArray(*runtime, "Env", path);
    config.entrypoint = stringArray(*runtime, "Entrypoint", path);
    config.cmd = stringArray(*runtime, "Cmd", path);
    config.workingDir = optionalString(*runtime, "WorkingDir", path);
    if (const json* ports = optionalObject(*runtime, "ExposedPorts", path)) {
      for (const auto& [port, ignored] : ports->items()) {
        config.exposedPorts.push_back(port);
      }
    }
    if (const json* labels = optionalObject(*runtime, "Labels", path)) {
      for (const auto& [key, value] : labels->items()) {
        if (!value.is_string()) {
          invalid(path + "Labels[\"" + key.substr(0, 100) + "\"] must be a string, not " +
                  value.type_name());
        }
        config.labels.emplace(key, value.get<std::string>());
      }
    }
  }
  if (const json* rootfs = optionalObject(document, "rootfs", "image config ")) {
    config.diffIds = stringArray(*rootfs, "diff_ids", "image config rootfs.");
  }
  if (const json* history = member(document, "history");
      history != nullptr && !history->is_null()) {
    if (!history->is_array()) {
      invalid(std::string("image config history must be an array, not ") + history->type_name());
    }
    config.historyEntries = history->size();
    // Lenient on purpose: history is documentation, and an odd entry must not make an image
    // that runs fine unjudgeable; it only loses its line in messages.
    for (const json& entry : *history) {
      if (!entry.is_object()) {
        config.layerHistory.emplace_back();
        continue;
      }
      const json* empty = member(entry, "empty_layer");
      if (empty != nullptr && empty->is_boolean() && empty->get<bool>()) continue;
      const json* createdBy = member(entry, "created_by");
      config.layerHistory.push_back(createdBy != nullptr && createdBy->is_string()
                                        ? createdBy->get<std::string>()
                                        : std::string());
    }
  }
  return config;
}

}  // namespace imagegate::registry
