#include "registry/local_formats.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_depth.h"
#include "common/json_parse.h"

namespace imagegate::registry {
namespace {

using nlohmann::json;
using Kind = FetchError::Kind;

constexpr std::size_t kMaxJsonDepth = 64;
constexpr std::string_view kOciPrefix = "oci:";
constexpr std::string_view kDockerArchivePrefix = "docker-archive:";

[[noreturn]] void invalid(const std::string& message) {
  throw FetchError(Kind::kInvalidContent, message);
}

/// "a", "b" and "c" — for messages listing what a source has.
std::string quotedList(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < 20; ++i) {
    text += (i == 0 ? "" : ", ") + ("\"" + names[i].substr(0, 200) + "\"");
  }
  if (names.size() > 20) text += " and " + std::to_string(names.size() - 20) + " more";
  return text;
}

/// The last path component, lowercased and reduced to a repository path component: runs of
/// anything but [a-z0-9] become one '-', an extension (".tar") goes.
std::string repositoryFromPath(std::string_view path, bool stripExtension) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  std::string_view base =
      path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  if (stripExtension) {
    const std::size_t dot = base.find('.', 1);
    if (dot != std::string_view::npos) base = base.substr(0, dot);
  }
  std::string repository;
  for (const char c : base) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool keep = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (keep) {
      repository += lower;
    } else if (!repository.empty() && repository.back() != '-') {
      repository += '-';
    }
  }
  while (!repository.empty() && repository.back() == '-') repository.pop_back();
  if (repository.size() > 100) repository.resize(100);
  while (!repository.empty() && repository.back() == '-') repository.pop_back();
  return repository.empty() ? "image" : repository;
}

bool isTag(std::string_view name) {
  const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  return !name.empty() && name.size() <= 128 && word(name.front()) &&
         std::all_of(name.begin(), name.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-'; });
}

std::string refNameOf(const IndexEntry& entry) {
  const auto found = entry.annotations.find(std::string(kRefNameAnnotation));
  return found == entry.annotations.end() ? "" : found->second;
}

std::vector<std::string> stringArray(const json& object, const char* key, const std::string& path,
                                     std::size_t limit, bool required) {
  const auto found = object.find(key);
  if (found == object.end() || found->is_null()) {
    if (required) invalid(path + "." + key + " is missing");
    return {};
  }
  if (!found->is_array()) invalid(path + "." + key + " must be an array");
  if (found->size() > limit) {
    invalid(path + "." + key + " has " + std::to_string(found->size()) +
            " entries, over the limit of " + std::to_string(limit));
  }
  std::vector<std::string> values;
  for (const json& value : *found) {
    if (!value.is_string()) invalid(path + "." + key + " must hold strings only");
    values.push_back(value.get<std::string>());
  }
  return values;
}

}  // namespace

std::string_view transportName(LocalTransport transport) {
  return transport == LocalTransport::kOciLayout ? "oci" : "docker-archive";
}

std::optional<LocalSourceName> parseLocalSourceName(std::string_view text) {
  LocalSourceName source;
  std::string_view rest;
  if (text.substr(0, kOciPrefix.size()) == kOciPrefix) {
    source.transport = LocalTransport::kOciLayout;
    rest = text.substr(kOciPrefix.size());
  } else if (text.substr(0, kDockerArchivePrefix.size()) == kDockerArchivePrefix) {
    source.transport = LocalTransport::kDockerArchive;
    rest = text.substr(kDockerArchivePrefix.size());
  } else {
    return std::nullopt;
  }
  const std::size_t colon = rest.find(':');
  source.path = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) source.selector = std::string(rest.substr(colon + 1));
  source.written = std::string(text);
  if (source.path.empty()) {
    throw Error("\"" + source.written + "\" names no " +
                (source.transport == LocalTransport::kOciLayout ? "directory: write oci:DIR[:TAG]"
                                                                : "file: write "
                                                                  "docker-archive:FILE[:REF]"));
  }
  return source;
}

std::optional<image::ImageRef> referenceInName(std::string_view name) {
  if (name.find_first_of("/:@") == std::string_view::npos) return std::nullopt;
  try {
    return image::parseImageRef(name);
  } catch (const image::InvalidReference&) {
    return std::nullopt;
  }
}

image::ImageRef judgedReference(const LocalSourceName& source, std::string_view name) {
  if (auto named = referenceInName(name)) return *named;
  image::ImageRef ref;
  const bool oci = source.transport == LocalTransport::kOciLayout;
  ref.registry = std::string(transportName(source.transport)) + ".invalid";
  ref.repository = repositoryFromPath(source.path, !oci);
  ref.tag = isTag(name) ? std::string(name) : "untagged";
  return ref;
}

std::vector<IndexEntry> selectLayoutEntries(const ImageIndex& index, std::string_view tag) {
  std::vector<std::string> names;
  for (const IndexEntry& entry : index.manifests) {
    const std::string name = refNameOf(entry);
    names.push_back(name.empty() ? "(untagged " + entry.descriptor.digest.substr(0, 19) + ")"
                                 : name);
  }
  if (index.manifests.empty()) throw FetchError(Kind::kNotFound, "the layout holds no image");
  if (tag.empty()) {
    if (index.manifests.size() == 1) return index.manifests;
    throw FetchError(Kind::kNotFound, "the layout holds " + std::to_string(names.size()) +
                                          " images (" + quotedList(names) +
                                          "): name one as oci:DIR:TAG");
  }
  std::vector<IndexEntry> chosen;
  for (const IndexEntry& entry : index.manifests) {
    if (refNameOf(entry) == tag) chosen.push_back(entry);
  }
  if (chosen.empty()) {
    throw FetchError(Kind::kNotFound, "the layout has no image tagged \"" +
                                          std::string(tag.substr(0, 200)) + "\" (it has " +
                                          quotedList(names) + ")");
  }
  const bool platformsKnown = std::all_of(
      chosen.begin(), chosen.end(), [](const IndexEntry& e) { return e.platform.has_value(); });
  if (chosen.size() > 1 && !platformsKnown) {
    throw FetchError(Kind::kInvalidContent,
                     std::to_string(chosen.size()) + " images are tagged \"" + std::string(tag) +
                         "\" and not all of them name their platform, so none can be chosen");
  }
  return chosen;
}

std::vector<DockerArchiveImage> parseDockerArchiveManifest(std::string_view body) {
  if (body.size() > kMaxManifestBytes) {
    invalid("manifest.json is " + std::to_string(body.size()) + " bytes, over the limit of " +
            std::to_string(kMaxManifestBytes));
  }
  if (jsonNestingExceeds(body, kMaxJsonDepth)) {
    invalid("manifest.json nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  JsonProblem problem;
  const std::optional<json> document = tryParseJson(body, problem);
  if (!document) invalid("manifest.json is not valid JSON: " + problem.reason);
  if (!document->is_array()) invalid("manifest.json is not a JSON array");
  if (document->size() > kMaxIndexEntries) {
    invalid("manifest.json lists " + std::to_string(document->size()) +
            " images, over the limit of " + std::to_string(kMaxIndexEntries));
  }
  std::vector<DockerArchiveImage> images;
  for (std::size_t i = 0; i < document->size(); ++i) {
    const json& entry = (*document)[i];
    const std::string path = "manifest.json[" + std::to_string(i) + "]";
    if (!entry.is_object()) invalid(path + " must be an object");
    DockerArchiveImage image;
    const auto config = entry.find("Config");
    if (config == entry.end() || !config->is_string() || config->get<std::string>().empty()) {
      invalid(path + ".Config must name the config file");
    }
    image.config = config->get<std::string>();
    image.repoTags = stringArray(entry, "RepoTags", path, kMaxIndexEntries, false);
    image.layers = stringArray(entry, "Layers", path, kMaxLayers, true);
    images.push_back(std::move(image));
  }
  if (images.empty()) invalid("manifest.json lists no image");
  return images;
}

const DockerArchiveImage& selectArchiveImage(const std::vector<DockerArchiveImage>& images,
                                             std::string_view selector, std::string& name) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images[i].repoTags.empty()) names.push_back("@" + std::to_string(i) + " (untagged)");
    for (const std::string& tag : images[i].repoTags) names.push_back(tag);
  }
  if (selector.empty()) {
    if (images.size() == 1 && images[0].repoTags.size() <= 1) {
      name = images[0].repoTags.empty() ? "" : images[0].repoTags[0];
      return images[0];
    }
    throw FetchError(Kind::kNotFound, "the archive holds " + quotedList(names) +
                                          ": name one as docker-archive:FILE:REF or "
                                          "docker-archive:FILE:@N");
  }
  if (selector.front() == '@') {
    const std::string_view digits = selector.substr(1);
    const bool numeric =
        !digits.empty() && digits.size() < 6 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    const std::size_t index = numeric ? std::stoul(std::string(digits)) : images.size();
    if (index >= images.size()) {
      throw FetchError(Kind::kNotFound, "the archive has no image \"" +
                                            std::string(selector.substr(0, 20)) + "\" (it has " +
                                            std::to_string(images.size()) + ", from @0)");
    }
    const DockerArchiveImage& image = images[index];
    name = image.repoTags.size() == 1 ? image.repoTags[0] : "";
    return image;
  }
  std::optional<image::ImageRef> wanted;
  try {
    wanted = image::parseImageRef(selector);
  } catch (const image::InvalidReference& e) {
    throw FetchError(Kind::kNotFound, e.what());
  }
  for (const DockerArchiveImage& image : images) {
    for (const std::string& tag : image.repoTags) {
      std::optional<image::ImageRef> ref;
      try {
        ref = image::parseImageRef(tag);
      } catch (const image::InvalidReference&) {
        continue;
      }
      if (*ref == *wanted) {
        name = tag;
        return image;
      }
    }
  }
  throw FetchError(Kind::kNotFound, "the archive has no image tagged \"" +
                                        std::string(selector.substr(0, 200)) + "\" (it has " +
                                        quotedList(names) + ")");
}

std::optional<std::string> normalizeMemberPath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  if (parts.empty()) return std::nullopt;
  std::string normalized;
  for (const std::string_view part : parts) {
    normalized += (normalized.empty() ? "" : "/") + std::string(part);
  }
  return normalized;
}

}  // namespace imagegate::registry
