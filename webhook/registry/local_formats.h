#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/image_ref.h"
#include "registry/manifest.h"

// What images on disk look like before a registry sees them, parsed without I/O: source names as
// skopeo writes its transports (oci:DIR[:TAG], docker-archive:FILE[:REF]), the choice of one image
// in an OCI layout's index.json or a `docker save` manifest.json, and the reference policies judge
// such an image as. The readers are in local_sources.h.
namespace imagegate::registry {

/// The annotation an OCI image layout names its images with (a tag, or a full reference).
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
/// The full reference containerd and BuildKit add next to a tag-only ref.name.
inline constexpr std::string_view kContainerdNameAnnotation = "io.containerd.image.name";

enum class LocalTransport { kOciLayout, kDockerArchive };

/// "oci" or "docker-archive", as the source was written.
std::string_view transportName(LocalTransport transport);

/// An image source on disk, split as skopeo splits it: at the first ':' after the transport, so
/// the path cannot contain ':' and the selector may (`oci:out:registry.example.com/app:1`).
struct LocalSourceName {
  LocalTransport transport = LocalTransport::kOciLayout;
  std::string path;
  /// oci: the ref.name to pick. docker-archive: a reference among RepoTags, or "@N" for the
  /// N-th image of manifest.json. Empty: the only image.
  std::string selector;
  std::string written;  ///< As given on the command line.
};

/// The source `text` names, or nullopt when it names no local transport (a registry reference,
/// also when written as docker://REF). Throws Error for a transport with an empty path.
std::optional<LocalSourceName> parseLocalSourceName(std::string_view text);

/// The reference a name from an image source (ref.name, a RepoTags entry) stands for, when it is
/// a full reference: it contains '/', ':' or '@', which a bare tag never does. nullopt for a tag
/// or anything that does not parse.
std::optional<image::ImageRef> referenceInName(std::string_view name);

/// The reference policies judge a local image as: `name` when it is a full reference
/// (referenceInName); otherwise an explicit stand-in under a reserved host that no registry can
/// have (RFC 2606 `.invalid`): `oci.invalid/<dir name>:<tag>` or
/// `docker-archive.invalid/<file name>:<tag>`, the tag being `name` when it is a valid tag, else
/// "untagged".
image::ImageRef judgedReference(const LocalSourceName& source, std::string_view name);

/// The entries of an OCI layout's index.json that `tag` selects: those whose ref.name is `tag`;
/// with an empty tag, the only entry. Several entries with one tag are returned together when
/// each has a platform (the caller picks one as from an index). Throws FetchError(kNotFound)
/// naming the tags the layout has.
std::vector<IndexEntry> selectLayoutEntries(const ImageIndex& index, std::string_view tag);

/// One image of a `docker save` archive's manifest.json.
struct DockerArchiveImage {
  std::string config;                 ///< Member path of the config JSON.
  std::vector<std::string> repoTags;  ///< May be empty (saved by image ID).
  std::vector<std::string> layers;    ///< Member paths, base layer first.
};

/// Parses manifest.json (a JSON array; bounded by kMaxManifestBytes, kMaxLayers per image and
/// kMaxIndexEntries images). Throws FetchError(kInvalidContent) naming the offending field.
std::vector<DockerArchiveImage> parseDockerArchiveManifest(std::string_view body);

/// The image `selector` picks: "" the only one (the only image must also have at most one
/// RepoTag, or the reference judged would be a guess), "@N" the N-th (0 first), else the image
/// whose RepoTags hold that reference (compared normalised: "busybox" is
/// docker.io/library/busybox:latest). Sets `name` to the RepoTags entry that names the image, ""
/// when none does. Throws FetchError(kNotFound) listing the images and tags there are.
const DockerArchiveImage& selectArchiveImage(const std::vector<DockerArchiveImage>& images,
                                             std::string_view selector, std::string& name);

/// An archive member path as tar stores it, for comparison: "./" prefixes and repeated slashes
/// removed, "." and ".." resolved lexically. nullopt for a path that climbs above the archive's
/// root or is empty.
std::optional<std::string> normalizeMemberPath(std::string_view path);

}  // namespace imagegate::registry
