#include "registry/local_sources.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/json_parse.h"
#include "registry/digest.h"
#include "registry/manifest.h"

namespace imagegate::registry {
namespace {

using Kind = FetchError::Kind;

constexpr std::size_t kChunkBytes = 1 << 20;
/// Tar members walked in one archive: docker save writes a few per layer.
constexpr std::size_t kMaxArchiveMembers = 100'000;
constexpr std::size_t kMaxLinkHops = 8;
constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";

[[noreturn]] void invalid(const std::string& message) {
  throw FetchError(Kind::kInvalidContent, message);
}

void checkDeadline(Deadline deadline) {
  if (deadline.expired()) throw FetchError(Kind::kTimeout, "the deadline passed while reading");
}

/// Throws a mismatch unless `digester` (fed `bytes`) hashed to what `blob` says.
void verify(Digester& digester, const image::Descriptor& blob, std::uint64_t bytes,
            const std::string& what) {
  if (bytes != blob.size) {
    invalid(what + " is " + std::to_string(bytes) + " bytes, but its descriptor says " +
            std::to_string(blob.size));
  }
  const std::string actual = digester.finish();
  if (actual != blob.digest) {
    invalid(what + " does not match its digest " + blob.digest + " (its content hashes to " +
            actual + ")");
  }
}

// --- OCI image layout ---------------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class OciLayoutImage final : public LocalImage {
 public:
  OciLayoutImage(LocalSourceName source, std::string name, Fd dir, std::vector<IndexEntry> entries)
      : LocalImage(std::move(source), std::move(name)),
        dir_(std::move(dir)),
        entries_(std::move(entries)) {}

  static LocalImagePtr open(const LocalSourceName& source) {
    Fd dir(::open(source.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
      throw FetchError(Kind::kNotFound,
                       "cannot open the directory " + source.path + ": " + std::strerror(errno));
    }
    const std::string layout = readFile(dir.get(), "oci-layout", 4096, Kind::kNotFound,
                                        "not an OCI image layout (no oci-layout file)");
    checkLayoutVersion(layout);
    const std::string indexJson =
        readFile(dir.get(), "index.json", kMaxManifestBytes, Kind::kNotFound,
                 "not an OCI image layout (no index.json)");
    ParsedManifest parsed = parseManifest(indexJson, media::kOciIndex);
    const auto* index = std::get_if<ImageIndex>(&parsed);
    if (index == nullptr) invalid("index.json is an image manifest, not an image index");
    std::vector<IndexEntry> entries = selectLayoutEntries(*index, source.selector);
    return std::make_shared<OciLayoutImage>(source, nameOf(entries.front(), source.selector),
                                            std::move(dir), std::move(entries));
  }

  image::ImageFacts fetchFacts(const image::Platform& platform, Deadline deadline) override {
    image::ImageFacts facts;
    facts.ref = reference();
    IndexEntry entry = entries_.front();
    if (entries_.size() > 1) entry = selectPlatform(ImageIndex{"", entries_}, platform);
    ParsedManifest parsed =
        parseManifest(readBlob(entry.descriptor, kMaxManifestBytes), entry.descriptor.mediaType);
    if (auto* nested = std::get_if<ImageIndex>(&parsed)) {
      entry = selectPlatform(*nested, platform);
      checkDeadline(deadline);
      parsed =
          parseManifest(readBlob(entry.descriptor, kMaxManifestBytes), entry.descriptor.mediaType);
      if (std::holds_alternative<ImageIndex>(parsed)) {
        invalid("the index entry for " + entry.platform->str() +
                " is another index (nested indexes are not supported)");
      }
    }
    auto& manifest = std::get<ImageManifest>(parsed);
    facts.manifestDigest = entry.descriptor.digest;
    facts.manifestMediaType = manifest.mediaType;
    facts.config = manifest.config;
    facts.layers = manifest.layers;
    checkDeadline(deadline);
    facts.imageConfig = parseImageConfig(readBlob(manifest.config, kMaxConfigBytes));
    facts.platform =
        entry.platform ? *entry.platform
                       : image::Platform{facts.imageConfig.os, facts.imageConfig.architecture, ""};
    return facts;
  }

  void fetchBlob(const image::Descriptor& blob, const BlobSink& sink, Deadline deadline) override {
    const Fd file = openBlob(blob);
    Digester digester(parseDigest(blob.digest)->algorithm);
    std::string chunk(kChunkBytes, '\0');
    std::uint64_t total = 0;
    while (true) {
      checkDeadline(deadline);
      const ssize_t n = ::read(file.get(), chunk.data(), chunk.size());
      if (n < 0) invalid("cannot read blob " + blob.digest + ": " + std::strerror(errno));
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
      if (total > blob.size) break;  // verify() names the size
      const std::string_view data(chunk.data(), static_cast<std::size_t>(n));
      digester.update(data);
      sink(data);
    }
    verify(digester, blob, total, "blob " + blob.digest);
  }

 private:
  static std::string nameOf(const IndexEntry& entry, const std::string& selector) {
    // BuildKit and containerd store the full reference beside a tag-only ref.name.
    const auto full = entry.annotations.find(std::string(kContainerdNameAnnotation));
    if (full != entry.annotations.end() && referenceInName(full->second)) return full->second;
    const auto refName = entry.annotations.find(std::string(kRefNameAnnotation));
    return refName != entry.annotations.end() ? refName->second : selector;
  }

  static void checkLayoutVersion(const std::string& text) {
    JsonProblem problem;
    const auto document = tryParseJson(text, problem);
    if (!document || !document->is_object() || !document->contains("imageLayoutVersion") ||
        !(*document)["imageLayoutVersion"].is_string()) {
      invalid("oci-layout is not {\"imageLayoutVersion\": \"1.0.0\"}");
    }
    const std::string version = (*document)["imageLayoutVersion"].get<std::string>();
    if (version.rfind("1.", 0) != 0) {
      invalid("image layout version \"" + version.substr(0, 40) + "\" is not supported (1.x is)");
    }
  }

  /// Opens `name` in `dir` as a regular file: no symlink followed, no FIFO waited on.
  static Fd openRegular(int dir, const std::string& name, Kind missingKind,
                        const std::string& missing) {
    Fd file(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (file.get() < 0) {
      if (errno == ENOENT) throw FetchError(missingKind, missing);
      invalid("cannot open " + name + ": " +
              (errno == ELOOP ? std::string("it is a symbolic link") : std::strerror(errno)));
    }
    struct stat status {};
    if (::fstat(file.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
      invalid(name + " is not a regular file");
    }
    return file;
  }

  static std::string readAll(int fd, std::size_t limit, const std::string& what) {
    std::string text(limit + 1, '\0');
    std::size_t used = 0;
    while (used < text.size()) {
      const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
      if (n < 0) invalid("cannot read " + what + ": " + std::strerror(errno));
      if (n == 0) break;
      used += static_cast<std::size_t>(n);
    }
    if (used > limit) invalid(what + " is larger than " + std::to_string(limit) + " bytes");
    text.resize(used);
    return text;
  }

  static std::string readFile(int dir, const std::string& name, std::size_t limit, Kind kind,
                              const std::string& missing) {
    const Fd file = openRegular(dir, name, kind, missing);
    return readAll(file.get(), limit, name);
  }

  /// blobs/<algorithm>/<hex>, opened one directory at a time below DIR. The digest was
  /// validated (sha256/sha512, lowercase hex of the right length), so no component can climb.
  Fd openBlob(const image::Descriptor& blob) const {
    const std::optional<ParsedDigest> digest = parseDigest(blob.digest);
    if (!digest) invalid("\"" + blob.digest.substr(0, 80) + "\" is not a blob digest");
    const std::string missing = "blob " + blob.digest + " is missing from the layout";
    Fd blobs(::openat(dir_.get(), "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (blobs.get() < 0) throw FetchError(Kind::kNotFound, missing);
    Fd algorithm(::openat(blobs.get(), digest->algorithm.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (algorithm.get() < 0) throw FetchError(Kind::kNotFound, missing);
    Fd file = openRegular(algorithm.get(), digest->hex, Kind::kNotFound, missing);
    struct stat status {};
    ::fstat(file.get(), &status);
    if (static_cast<std::uint64_t>(status.st_size) != blob.size) {
      invalid("blob " + blob.digest + " is " + std::to_string(status.st_size) +
              " bytes, but its descriptor says " + std::to_string(blob.size));
    }
    return file;
  }

  /// A small blob (manifest, config) read whole and verified.
  std::string readBlob(const image::Descriptor& blob, std::size_t limit) const {
    if (blob.size > limit) {
      invalid("blob " + blob.digest + " is " + std::to_string(blob.size) +
              " bytes, over the limit of " + std::to_string(limit));
    }
    const Fd file = openBlob(blob);
    std::string body = readAll(file.get(), limit, "blob " + blob.digest);
    Digester digester(parseDigest(blob.digest)->algorithm);
    digester.update(body);
    verify(digester, blob, body.size(), "blob " + blob.digest);
    return body;
  }

  const Fd dir_;
  const std::vector<IndexEntry> entries_;
};

// --- docker save archives -----------------------------------------------------------------------

/// One pass over a tar file (uncompressed or gzip), member by member.
class TarReader {
 public:
  explicit TarReader(const std::string& path) : archive_(archive_read_new()) {
    archive_read_support_format_tar(archive_);
    archive_read_support_filter_gzip(archive_);
    if (archive_read_open_filename(archive_, path.c_str(), 64 * 1024) != ARCHIVE_OK) {
      const std::string why = archive_error_string(archive_) ? archive_error_string(archive_) : "";
      archive_read_free(archive_);
      invalid(path + " is not a readable tar file: " + why);
    }
  }
  ~TarReader() { archive_read_free(archive_); }
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  /// The next member, or null at the end. Throws on a corrupt header or too many members.
  archive_entry* next() {
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(archive_, &entry);
    if (status == ARCHIVE_EOF) return nullptr;
    if (status < ARCHIVE_WARN) fail("is not a readable tar file");
    if (++members_ > kMaxArchiveMembers) {
      invalid("the archive has more than " + std::to_string(kMaxArchiveMembers) + " members");
    }
    return entry;
  }

  /// The current member's next bytes; empty at its end.
  std::string_view read(std::string& buffer) {
    const la_ssize_t n = archive_read_data(archive_, buffer.data(), buffer.size());
    if (n < 0) fail("has a member that cannot be read");
    return {buffer.data(), static_cast<std::size_t>(n)};
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    const char* why = archive_error_string(archive_);
    invalid("the archive " + what + (why ? std::string(": ") + why : std::string()));
  }

  archive* archive_;
  std::size_t members_ = 0;
};

struct ArchiveMember {
  std::uint64_t size = 0;
  std::string head;        ///< The first bytes, for the compression.
  std::string linkTarget;  ///< Set for symbolic and hard links (normalized).
};

std::string_view layerCompressionSuffix(std::string_view head) {
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return "+gzip";
  }
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return "+zstd";
  }
  return "";
}

class ArchiveImage final : public LocalImage {
 public:
  ArchiveImage(LocalSourceName source, std::string name, std::string config,
               std::vector<std::string> layers, std::map<std::string, ArchiveMember> members)
      : LocalImage(std::move(source), std::move(name)),
        config_(std::move(config)),
        layerPaths_(std::move(layers)),
        members_(std::move(members)) {}

  static LocalImagePtr open(const LocalSourceName& source) {
    struct stat status {};
    if (::stat(source.path.c_str(), &status) != 0) {
      throw FetchError(Kind::kNotFound, "cannot open " + source.path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(status.st_mode)) invalid(source.path + " is not a regular file");
    std::map<std::string, ArchiveMember> members;
    std::optional<std::string> manifestJson;
    TarReader tar(source.path);
    std::string buffer(kChunkBytes, '\0');
    while (archive_entry* entry = tar.next()) {
      const char* rawName = archive_entry_pathname(entry);
      const std::optional<std::string> name = normalizeMemberPath(rawName ? rawName : "");
      if (!name) continue;  // "../x" or "/": never named by a manifest.json we accept
      ArchiveMember member;
      if (const char* hardlink = archive_entry_hardlink(entry)) {
        member.linkTarget = normalizeMemberPath(hardlink).value_or("");
      } else if (archive_entry_filetype(entry) == AE_IFLNK) {
        const char* target = archive_entry_symlink(entry);
        const std::size_t slash = name->rfind('/');
        const std::string dir = slash == std::string::npos ? "" : name->substr(0, slash + 1);
        member.linkTarget = normalizeMemberPath(dir + (target ? target : "")).value_or("");
      } else if (archive_entry_filetype(entry) == AE_IFREG) {
        member.size = static_cast<std::uint64_t>(archive_entry_size(entry));
        if (*name == "manifest.json") {
          if (member.size > kMaxManifestBytes) {
            invalid("manifest.json is larger than " + std::to_string(kMaxManifestBytes) + " bytes");
          }
          manifestJson = readMember(tar, buffer, member.size);
        } else {
          std::string head(8, '\0');
          member.head = std::string(tar.read(head));
        }
      } else {
        continue;
      }
      members[*name] = std::move(member);
    }
    if (!manifestJson) {
      throw FetchError(Kind::kNotFound, "not a docker-archive (no manifest.json)");
    }
    const std::vector<DockerArchiveImage> images = parseDockerArchiveManifest(*manifestJson);
    std::string name;
    const DockerArchiveImage& chosen = selectArchiveImage(images, source.selector, name);
    const std::string config = resolve(members, chosen.config);
    std::vector<std::string> layers;
    for (const std::string& layer : chosen.layers) layers.push_back(resolve(members, layer));
    return std::make_shared<ArchiveImage>(source, name, config, std::move(layers),
                                          std::move(members));
  }

  image::ImageFacts fetchFacts(const image::Platform& /*platform*/, Deadline deadline) override {
    // One pass: the config, and the digest of each compressed layer (an uncompressed layer's
    // digest is its diff_id, which the config lists and fetchBlob() verifies).
    std::string configBody;
    std::map<std::string, std::string> compressedDigests;
    {
      TarReader tar(source().path);
      std::string buffer(kChunkBytes, '\0');
      while (archive_entry* entry = tar.next()) {
        checkDeadline(deadline);
        const auto name =
            normalizeMemberPath(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
        if (!name || archive_entry_filetype(entry) != AE_IFREG) continue;
        if (*name == config_) {
          if (members_.at(config_).size > kMaxConfigBytes) {
            invalid("the config " + config_ + " is larger than " + std::to_string(kMaxConfigBytes) +
                    " bytes");
          }
          configBody = readMember(tar, buffer, members_.at(config_).size);
        } else if (isCompressedLayer(*name)) {
          Digester digester;
          while (true) {
            const std::string_view data = tar.read(buffer);
            if (data.empty()) break;
            digester.update(data);
          }
          compressedDigests[*name] = digester.finish();
        }
      }
    }
    image::ImageFacts facts;
    facts.ref = reference();
    facts.config = {std::string(kDockerConfig), sha256Digest(configBody), configBody.size()};
    checkConfigName(facts.config.digest);
    facts.manifestDigest = facts.config.digest;  // the image ID: an archive has no manifest
    facts.imageConfig = parseImageConfig(configBody);
    facts.platform = {facts.imageConfig.os, facts.imageConfig.architecture, ""};
    if (facts.imageConfig.diffIds.size() != layerPaths_.size()) {
      invalid("manifest.json lists " + std::to_string(layerPaths_.size()) +
              " layers but the config's rootfs.diff_ids " +
              std::to_string(facts.imageConfig.diffIds.size()));
    }
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < layerPaths_.size(); ++i) {
      const ArchiveMember& member = members_.at(layerPaths_[i]);
      image::Descriptor layer;
      layer.mediaType = std::string(kOciLayer) + std::string(layerCompressionSuffix(member.head));
      layer.size = member.size;
      const auto compressed = compressedDigests.find(layerPaths_[i]);
      layer.digest =
          compressed != compressedDigests.end() ? compressed->second : facts.imageConfig.diffIds[i];
      if (!parseDigest(layer.digest)) {
        invalid("rootfs.diff_ids[" + std::to_string(i) + "] is not a digest");
      }
      blobMembers_[layer.digest] = layerPaths_[i];
      facts.layers.push_back(std::move(layer));
    }
    return facts;
  }

  void fetchBlob(const image::Descriptor& blob, const BlobSink& sink, Deadline deadline) override {
    std::string path;
    {
      std::lock_guard lock(mutex_);
      const auto found = blobMembers_.find(blob.digest);
      if (found == blobMembers_.end()) {
        throw FetchError(Kind::kNotFound, "the archive has no layer " + blob.digest);
      }
      path = found->second;
    }
    const auto digest = parseDigest(blob.digest);
    TarReader tar(source().path);
    std::string buffer(kChunkBytes, '\0');
    while (archive_entry* entry = tar.next()) {
      checkDeadline(deadline);
      const char* raw = archive_entry_pathname(entry);
      if (normalizeMemberPath(raw ? raw : "") != path ||
          archive_entry_filetype(entry) != AE_IFREG) {
        continue;
      }
      Digester digester(digest->algorithm);
      std::uint64_t total = 0;
      while (true) {
        checkDeadline(deadline);
        const std::string_view data = tar.read(buffer);
        if (data.empty()) break;
        total += data.size();
        if (total > blob.size) break;  // verify() names the size
        digester.update(data);
        sink(data);
      }
      verify(digester, blob, total, "layer " + path);
      return;
    }
    throw FetchError(Kind::kNotFound, "the archive no longer holds " + path);
  }

 private:
  static std::string readMember(TarReader& tar, std::string& buffer, std::uint64_t size) {
    std::string body;
    while (true) {
      const std::string_view data = tar.read(buffer);
      if (data.empty()) break;
      body += data;
      if (body.size() > size) invalid("a member is longer than its tar header says");
    }
    return body;
  }

  /// The regular member `path` (from manifest.json) stands for, following links inside the
  /// archive: older docker save writes a repeated layer as a symlink to the first copy.
  static std::string resolve(const std::map<std::string, ArchiveMember>& members,
                             const std::string& path) {
    std::optional<std::string> current = normalizeMemberPath(path);
    for (std::size_t hop = 0; current && hop <= kMaxLinkHops; ++hop) {
      const auto found = members.find(*current);
      if (found == members.end()) break;
      if (found->second.linkTarget.empty()) return *current;
      current = found->second.linkTarget;
    }
    throw FetchError(Kind::kInvalidContent, "manifest.json names \"" + path.substr(0, 200) +
                                                "\", which is not a file in the archive");
  }

  bool isCompressedLayer(const std::string& name) const {
    const auto member = members_.find(name);
    return std::find(layerPaths_.begin(), layerPaths_.end(), name) != layerPaths_.end() &&
           member != members_.end() && !layerCompressionSuffix(member->second.head).empty();
  }

  /// A config stored as "<hex>.json" or "blobs/sha256/<hex>" is named by its digest: it must
  /// have it.
  void checkConfigName(const std::string& digest) const {
    std::string_view name = config_;
    if (name.rfind("blobs/sha256/", 0) == 0) name.remove_prefix(13);
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json") name.remove_suffix(5);
    if (!parseDigest("sha256:" + std::string(name))) return;  // not named by a digest
    if ("sha256:" + std::string(name) != digest) {
      invalid("the config " + config_ + " does not match its name (its content hashes to " +
              digest + ")");
    }
  }

  const std::string config_;
  const std::vector<std::string> layerPaths_;
  const std::map<std::string, ArchiveMember> members_;
  std::mutex mutex_;
  std::map<std::string, std::string> blobMembers_;  ///< Layer digest → member, from fetchFacts().
};

class UnreadableImage final : public LocalImage {
 public:
  UnreadableImage(LocalSourceName source, FetchError error)
      : LocalImage(std::move(source), ""), error_(std::move(error)) {}
  image::ImageFacts fetchFacts(const image::Platform&, Deadline) override { throw error_; }
  void fetchBlob(const image::Descriptor&, const BlobSink&, Deadline) override { throw error_; }

 private:
  FetchError error_;
};

/// The error as callers see it: naming the source as it was written.
FetchError failure(const LocalSourceName& source, const FetchError& e) {
  const std::string prefix = "cannot read " + source.written + ": ";
  const std::string what = e.what();
  return FetchError(e.kind(), what.rfind(prefix, 0) == 0 ? what : prefix + what);
}

template <typename Action>
auto namingSource(const LocalSourceName& source, Action action) {
  try {
    return action();
  } catch (const FetchError& e) {
    throw failure(source, e);
  } catch (const Error& e) {
    throw failure(source, FetchError(Kind::kInvalidContent, e.what()));
  }
}

}  // namespace

LocalImagePtr openLocalImage(const LocalSourceName& source) {
  return namingSource(source, [&] {
    return source.transport == LocalTransport::kOciLayout ? OciLayoutImage::open(source)
                                                          : ArchiveImage::open(source);
  });
}

LocalImagePtr unreadableLocalImage(const LocalSourceName& source, const FetchError& error) {
  return std::make_shared<UnreadableImage>(source, failure(source, error));
}

image::ImageFacts LocalImageRegistry::fetchFacts(const image::ImageRef& ref,
                                                 const image::Platform& platform,
                                                 Deadline deadline) {
  const auto found = images_.find(ref);
  if (found == images_.end()) {
    if (!fallback_) throw FetchError(Kind::kNotFound, "no source for " + ref.str());
    return fallback_->fetchFacts(ref, platform, deadline);
  }
  const LocalImagePtr& image = found->second;
  return namingSource(image->source(), [&] { return image->fetchFacts(platform, deadline); });
}

void LocalImageRegistry::fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                                   const BlobSink& sink, Deadline deadline) {
  const auto found = images_.find(ref);
  if (found == images_.end()) {
    if (!fallback_) throw FetchError(Kind::kNotFound, "no source for " + ref.str());
    return fallback_->fetchBlob(ref, blob, sink, deadline);
  }
  // Only the reader's own errors are renamed: what the sink throws (the layer scanner's verdict
  // on the content) reaches the caller as it was thrown.
  try {
    found->second->fetchBlob(blob, sink, deadline);
  } catch (const FetchError& e) {
    throw failure(found->second->source(), e);
  }
}

}  // namespace imagegate::registry
