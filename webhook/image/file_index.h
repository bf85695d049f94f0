#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The files of image layers: one compact index per layer (what a layer scan produces and what the
// cache keeps per layer digest), and the merged root filesystem a container sees once the layers
// are applied in order. Pure values, no I/O: the layers module fills them from tar streams.
namespace imagegate::image {

enum class EntryType : std::uint8_t {
  kRegular,
  kDirectory,
  kSymlink,
  kHardlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  /// `.wh.NAME`: deletes NAME (and everything below it) of the layers underneath.
  kWhiteout,
  /// `.wh..wh..opq` in DIR: hides everything the layers underneath put below DIR.
  kOpaque,
};

/// What kind of secret a small file holds. Only the kind is kept, never the secret.
enum class SecretKind : std::uint8_t {
  kNone,
  kPrivateKey,         ///< PEM "-----BEGIN ... PRIVATE KEY-----".
  kDotEnv,             ///< A `.env` file.
  kGitDirectory,       ///< A `.git` directory (history, remotes, sometimes tokens).
  kNpmCredentials,     ///< `.npmrc` with `_authToken`, `_auth` or `_password`.
  kPypiCredentials,    ///< `.pypirc` with a password.
  kNetrcCredentials,   ///< `.netrc` with a password.
  kDockerCredentials,  ///< `.docker/config.json` with an `auth` or `identitytoken`.
  kAwsCredentials,     ///< `.aws/credentials` with a secret access key.
  kGcpServiceAccount,  ///< Service-account JSON key (`"type": "service_account"`, `private_key`).
};

std::string_view entryTypeName(EntryType type);
/// A phrase for messages, e.g. "PEM private key".
std::string_view secretKindName(SecretKind kind);

/// A tar member name as the container runtime would place it, relative to the image root:
/// leading `/` and `./` dropped, `//` and `.` collapsed, and `..` resolved lexically without ever
/// going above the root (as containerd's fs.RootPath does), so `../../etc/passwd` is
/// `etc/passwd`: the index shows where the file lands, which is what rules must judge. Returns ""
/// for the root itself. A trailing `/` is dropped.
std::string normalizeLayerPath(std::string_view path);

/// The secret kind a file's name alone proves (`.env`, `.git` directories), or kNone.
SecretKind secretKindFromName(std::string_view normalizedPath, EntryType type);
/// True when the content of a regular file named `normalizedPath` of `size` bytes should be read
/// to decide its secret kind (small files with candidate names, and small files that may start
/// with a PEM header, decided on `head`, their first bytes).
bool isSecretCandidateName(std::string_view normalizedPath);
/// The secret kind of a small file from its name and content; kNone when it holds none.
SecretKind secretKindFromContent(std::string_view normalizedPath, std::string_view content);

/// One entry of a LayerIndex, viewing the index's memory (valid while the index lives).
struct FileEntry {
  std::string_view path;        ///< Normalized, relative to the image root, e.g. "usr/bin/sh".
  std::string_view linkTarget;  ///< Symlink target as written, or hardlink target normalized.
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  ///< Permission bits including setuid/setgid/sticky (07777).
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  EntryType type = EntryType::kRegular;
  SecretKind secret = SecretKind::kNone;

  bool isSetuid() const { return (mode & 04000) != 0; }
  bool isSetgid() const { return (mode & 02000) != 0; }
  /// World-writable and not a symlink (symlink modes mean nothing).
  bool isWorldWritable() const { return (mode & 0002) != 0 && type != EntryType::kSymlink; }
  bool isWhiteoutMarker() const {
    return type == EntryType::kWhiteout || type == EntryType::kOpaque;
  }
};

/// The index of one layer: every entry once (a later tar member for the same path replaces an
/// earlier one, as extraction does), sorted by path, in fixed-size records with all strings in
/// one arena. Whiteouts and opaque markers are entries of type kWhiteout/kOpaque whose path is the
/// path they delete or make opaque. Built with LayerIndexBuilder.
class LayerIndex {
 public:
  LayerIndex() = default;

  std::size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  FileEntry entry(std::size_t i) const;
  /// The file, directory, link or device at `path` (no whiteouts), or nullopt.
  std::optional<FileEntry> find(std::string_view path) const;
  /// Index of the first entry whose path is >= `path` (entries are sorted by path).
  std::size_t lowerBound(std::string_view path) const;

  /// `etc/passwd` and `etc/group` as this layer wrote them, when they were at most 64 KiB.
  const std::optional<std::string>& passwd() const { return passwd_; }
  const std::optional<std::string>& group() const { return group_; }
  /// Bytes of the uncompressed tar stream the index was built from.
  std::uint64_t uncompressedBytes() const { return uncompressedBytes_; }

  /// Heap bytes this index holds (records, strings, captured files), for cache accounting.
  std::size_t memoryBytes() const;

  /// A compact binary form ("IGLI" version 1) for the cache to persist.
  std::string serialize() const;
  /// Reads serialize()'s form; throws Error for anything else (truncated, corrupt, other version).
  static LayerIndex deserialize(std::string_view data);

 private:
  friend class LayerIndexBuilder;
  // 40 bytes per entry; strings live in arena_.
  struct Record {
    std::uint64_t size;
    std::uint32_t pathOffset;
    std::uint32_t targetOffset;
    std::uint32_t mode;
    std::uint32_t uid;
    std::uint32_t gid;
    std::uint16_t pathLength;
    std::uint16_t targetLength;
    EntryType type;
    SecretKind secret;
  };
  std::string_view pathOf(const Record& r) const {
    return {arena_.data() + r.pathOffset, r.pathLength};
  }

  std::vector<Record> records_;
  std::string arena_;
  std::optional<std::string> passwd_;
  std::optional<std::string> group_;
  std::uint64_t uncompressedBytes_ = 0;
};

/// Collects entries in tar order, then build() sorts them and keeps the last of each path.
class LayerIndexBuilder {
 public:
  /// Paths longer than 65535 bytes are a programming error here: scanners enforce their limit.
  void add(std::string_view normalizedPath, EntryType type, std::uint32_t mode, std::uint32_t uid,
           std::uint32_t gid, std::uint64_t size, std::string_view linkTarget = {},
           SecretKind secret = SecretKind::kNone);
  /// The content of etc/passwd / etc/group, or nullopt when the last member of that name was not
  /// a small regular file.
  void setPasswd(std::optional<std::string> content) { index_.passwd_ = std::move(content); }
  void setGroup(std::optional<std::string> content) { index_.group_ = std::move(content); }
  void setUncompressedBytes(std::uint64_t bytes) { index_.uncompressedBytes_ = bytes; }
  std::size_t entriesAdded() const { return index_.records_.size(); }
  /// Bytes of path and link-target text collected so far (before duplicates are dropped).
  std::size_t stringBytes() const { return index_.arena_.size(); }
  LayerIndex build() &&;

 private:
  LayerIndex index_;
};

/// An entry of the merged filesystem and the layer (0-based, in manifest order) that wrote it.
struct MergedEntry {
  FileEntry entry;
  std::size_t layer = 0;
};

/// A path matched by name, and the file it reaches (through symlinks and hardlinks).
struct PathMatch {
  std::string name;  ///< The name that matched, e.g. "bin/sh".
  MergedEntry file;  ///< What it reaches, e.g. "bin/busybox" (itself when it is no link).
};

/// A name that reaches a file and matches some of the patterns given to findReachableAny().
struct ReachableMatch {
  std::string name;                     ///< The name that matched, e.g. "bin/sh".
  MergedEntry file;                     ///< What it reaches, e.g. "bin/busybox".
  std::vector<std::uint32_t> patterns;  ///< Indexes of the patterns it matches, ascending.
};

/// The root filesystem a container sees: the layers applied in order, whiteouts and opaque
/// directories honoured, each path remembering the layer that last wrote it. Holds the layer
/// indexes (shared: they are cached) and 8 bytes per merged path.
class MergedFilesystem {
 public:
  /// Linux's limit on symlinks followed while resolving one path (ELOOP beyond it).
  static constexpr int kMaxLinkDepth = 40;

  /// Applies `layers` bottom first. Throws Error naming the layer and path when a hardlink points
  /// to a path that exists in neither its own nor an earlier layer (the runtime cannot unpack it).
  explicit MergedFilesystem(std::vector<std::shared_ptr<const LayerIndex>> layers);

  std::size_t layerCount() const { return layers_.size(); }
  std::size_t size() const { return merged_.size(); }
  MergedEntry at(std::size_t i) const;
  std::vector<MergedEntry> entries() const;
  /// What layer `layer` wrote that is still visible (layer = layerCount()-1: the final layer's
  /// contribution, for `scope: finalLayer`).
  std::vector<MergedEntry> entriesFromLayer(std::size_t layer) const;

  /// The entry at exactly `path` (normalized or not), following no symlink.
  std::optional<MergedEntry> find(std::string_view path) const;

  /// Layer `layer`'s index as scanned, with what later layers hide: a file deleted by a later
  /// whiteout is still in this layer's blob, and anyone who pulls the image can extract it.
  const LayerIndex& layerIndex(std::size_t layer) const { return *layers_[layer]; }
  /// The first layer above `layer` that hides `entry`, which `layer` wrote: a whiteout of it or
  /// of a directory above it, an opaque directory above it, or an entry that replaces it or a
  /// directory above it. nullopt when the merged filesystem still shows it.
  std::optional<std::size_t> hiddenBy(std::size_t layer, const FileEntry& entry) const;

  struct Resolution {
    enum class Status { kFound, kNotFound, kTooManyLinks };
    Status status = Status::kNotFound;
    std::string path;  ///< Symlink-free path reached (as far as it got).
    std::optional<MergedEntry> entry;
    bool loop = false;  ///< kTooManyLinks and a symlink came round again.
  };
  /// Resolves `path` as the kernel would inside the container: symlinks in every component
  /// (absolute targets from the image root, relative ones from the link's directory, `..` never
  /// above the root), the last one too when `followFinal`; more than kMaxLinkDepth links is
  /// kTooManyLinks. Hardlinks are files, not followed (see aliases()).
  Resolution resolve(std::string_view path, bool followFinal = true) const;

  /// Every name that reaches the same file as `path`: the file's own path, the symlinks that
  /// resolve to it, the hardlinks sharing it, and all of those again through directory symlinks
  /// (`bin -> usr/bin` makes `usr/bin/bash` also `bin/bash`). Sorted, at most `limit` names.
  std::vector<std::string> aliases(std::string_view path, std::size_t limit = 1024) const;

  /// Entries whose path matches `pattern` (see pathGlobMatch), no link following.
  std::vector<MergedEntry> glob(std::string_view pattern) const;
  /// Files (anything but directories) reached by a name matching `pattern`: their own paths and
  /// every alias, so `**/bin/sh` finds busybox through `bin/sh -> busybox`. One match per name.
  std::vector<PathMatch> findReachable(std::string_view pattern) const;
  /// findReachable() for many patterns in one walk: each file's names are worked out once,
  /// however many patterns there are (a rule with every preset has ~140), and each name is tried
  /// only against the patterns whose last component can match it. One match per name that
  /// matches at least one pattern, in the merged filesystem's order.
  std::vector<ReachableMatch> findReachableAny(const std::vector<std::string>& patterns) const;

  /// The merged image's `etc/passwd` / `etc/group` (through symlinks), when the layer that wrote
  /// it captured its content; nullopt when absent or too large.
  std::optional<std::string> passwd() const;
  std::optional<std::string> group() const;

  std::size_t memoryBytes() const;

 private:
  struct Ref {
    std::uint32_t layer;
    std::uint32_t entry;
  };
  struct LinkIndex;
  std::string_view pathOf(Ref ref) const;
  MergedEntry toEntry(Ref ref) const;
  std::optional<std::size_t> indexOf(std::string_view path) const;
  bool hasDescendants(std::string_view dir) const;
  std::optional<std::string> capturedFile(std::string_view path, bool passwd) const;

  std::vector<std::shared_ptr<const LayerIndex>> layers_;
  std::vector<Ref> merged_;  // sorted by path
  // Built once in the constructor (not lazily): a MergedFilesystem is shared by concurrent
  // reviews and must be immutable after construction.
  std::shared_ptr<const LinkIndex> links_;
};

/// Glob over normalized paths: `*` and `?` within one path component, `[...]` classes, `**` as a
/// whole component for any number of components (also none). A leading `/` in the pattern is
/// ignored, so "/usr/bin/*" and "usr/bin/*" are the same.
bool pathGlobMatch(std::string_view pattern, std::string_view path);

}  // namespace imagegate::image
