#pragma once

#include <map>
#include <memory>
#include <string>

#include "registry/local_formats.h"
#include "registry/registry.h"

// Images read from disk instead of a registry, so CI can check an image before it is pushed:
//  - oci:DIR[:TAG], an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>);
//  - docker-archive:FILE[:REF], what `docker save` (or skopeo) writes: manifest.json naming the
//    config and layer members, layers uncompressed tar, gzip or zstd.
// Every blob is checked against its digest and size while it is read, with the registry client's
// limits; a layout's blobs are opened below DIR only (digest hex validated, no symlink followed),
// and an archive is streamed with libarchive, member by member, never extracted to disk.
namespace imagegate::registry {

/// One image of a local source, chosen when the source is opened. Thread-safe once opened.
class LocalImage {
 public:
  LocalImage(LocalSourceName source, std::string name)
      : source_(std::move(source)),
        name_(std::move(name)),
        reference_(judgedReference(source_, name_)) {}
  virtual ~LocalImage() = default;
  LocalImage(const LocalImage&) = delete;
  LocalImage& operator=(const LocalImage&) = delete;

  const LocalSourceName& source() const { return source_; }
  /// What the source calls the image (ref.name, io.containerd.image.name or a RepoTags entry);
  /// "" when it has no name.
  const std::string& name() const { return name_; }
  /// The reference policies judge the image as (judgedReference()).
  const image::ImageRef& reference() const { return reference_; }

  /// The facts as the registry client would give them for the same image, with `ref` the judged
  /// reference. For a docker-archive, which has no manifest, manifestDigest is the image ID (the
  /// config's digest) and manifestMediaType is empty. Throws FetchError naming the source.
  virtual image::ImageFacts fetchFacts(const image::Platform& platform, Deadline deadline) = 0;
  /// Streams the blob (a layer fetchFacts() listed) to `sink`, verified against its digest and
  /// size. Throws FetchError naming the source, or what the sink throws.
  virtual void fetchBlob(const image::Descriptor& blob, const BlobSink& sink,
                         Deadline deadline) = 0;

 private:
  LocalSourceName source_;
  std::string name_;
  image::ImageRef reference_;
};

using LocalImagePtr = std::shared_ptr<LocalImage>;

/// Opens `source` and picks its image: reads the layout's oci-layout and index.json, or walks the
/// archive once for manifest.json. Throws FetchError naming the source: kNotFound (no such
/// directory or file, not a layout, no such tag), kInvalidContent (corrupt or hostile content).
LocalImagePtr openLocalImage(const LocalSourceName& source);

/// A stand-in for a source that could not be opened: its reference is the one judgedReference()
/// gives without a name, and every fetch throws `error`.
LocalImagePtr unreadableLocalImage(const LocalSourceName& source, const FetchError& error);

/// Answers the references of local images from their files and every other reference through
/// `fallback` (the registry client; null: those fail with kNotFound).
class LocalImageRegistry final : public Registry {
 public:
  LocalImageRegistry(std::map<image::ImageRef, LocalImagePtr> images, RegistryPtr fallback)
      : images_(std::move(images)), fallback_(std::move(fallback)) {}

  image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform& platform,
                               Deadline deadline) override;
  void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob, const BlobSink& sink,
                 Deadline deadline) override;

 private:
  const std::map<image::ImageRef, LocalImagePtr> images_;
  const RegistryPtr fallback_;
};

}  // namespace imagegate::registry
