#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "registry/registry.h"

// Pure parsers for what a registry serves: image indexes (OCI index, Docker manifest list), image
// manifests (OCI, Docker schema 2) and image config blobs. No I/O: the distribution client hands
// in bytes and gets values or a FetchError (kInvalidContent, kNoMatchingPlatform) whose message
// says what is wrong but not which image; the caller adds that.
namespace imagegate::registry {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media

/// Limits on untrusted content.
inline constexpr std::size_t kMaxManifestBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxConfigBytes = 8 * 1024 * 1024;
inline constexpr std::size_t kMaxLayers = 1000;
inline constexpr std::size_t kMaxIndexEntries = 1000;

/// The Accept header for manifest requests. It must list all four types: docker-registry answers
/// 404 for an OCI manifest it may not serve, and down-converts Docker manifests to schema 1.
std::string manifestAcceptHeader();

struct IndexEntry {
  image::Descriptor descriptor;
  std::optional<image::Platform> platform;  ///< Absent when the entry has no platform object.
  /// The entry's string annotations; an OCI layout's index.json names its images here
  /// (org.opencontainers.image.ref.name). Annotations whose value is not a string are skipped.
  std::map<std::string, std::string> annotations;
};

/// An OCI image index or Docker manifest list.
struct ImageIndex {
  std::string mediaType;
  std::vector<IndexEntry> manifests;
};

/// An OCI image manifest or Docker schema 2 manifest.
struct ImageManifest {
  std::string mediaType;
  image::Descriptor config;
  std::vector<image::Descriptor> layers;
};

using ParsedManifest = std::variant<ImageIndex, ImageManifest>;

/// Parses a manifest response. The type comes from `contentType` (parameters ignored); when that
/// is not a manifest type (application/json, octet-stream, empty) from the body's mediaType; and
/// when that is absent too (umoci writes none) from the shape: "manifests" → index, "config" →
/// manifest. A Content-Type that contradicts the body's mediaType is rejected. Schema 1 manifests
/// are rejected. Throws FetchError(kInvalidContent).
ParsedManifest parseManifest(std::string_view body, std::string_view contentType);

/// Picks the entry for `wanted` the way containerd does: os and architecture must match after
/// normalisation (x86_64 → amd64, aarch64 → arm64, ...); a missing variant means v8 on arm64 and
/// v7 on arm; on arm and amd64 an older variant is accepted when the wanted one is absent (an
/// arm/v7 host runs arm/v6 images, an amd64/v3 host runs amd64 = v1). Throws
/// FetchError(kNoMatchingPlatform) listing the platforms the index has.
const IndexEntry& selectPlatform(const ImageIndex& index, const image::Platform& wanted);

/// Canonical form used for matching: lowercase, architecture aliases resolved, default variants
/// filled in (arm64 → v8, arm → v7) and amd64's "v1" dropped.
image::Platform normalizePlatform(const image::Platform& platform);

/// Parses an OCI image config or Docker container config blob. Throws FetchError(kInvalidContent)
/// naming the offending field.
image::ImageConfig parseImageConfig(std::string_view body);

}  // namespace imagegate::registry
