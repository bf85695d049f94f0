#include "image/file_index.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"

namespace imagegate::image {

namespace {

// Sort key within one layer: a path may carry content, a whiteout and an opaque marker at once
// (a directory made opaque has both its own entry and `.wh..wh..opq`), so they are kept apart.
int categoryOf(EntryType type) {
  switch (type) {
    case EntryType::kWhiteout:
      return 1;
    case EntryType::kOpaque:
      return 2;
    default:
      return 0;
  }
}

std::string_view baseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view parentOf(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

/// `path` is `name` or ends with "/name" (a whole trailing path, e.g. ".aws/credentials").
bool hasTail(std::string_view path, std::string_view tail) {
  return path == tail || (endsWith(path, tail) && path[path.size() - tail.size() - 1] == '/');
}

bool isKeyFileName(std::string_view base) {
  return base == "id_rsa" || base == "id_ecdsa" || base == "id_ed25519" || base == "id_dsa" ||
         endsWith(base, ".pem") || endsWith(base, ".key");
}

// "-----BEGIN <words> PRIVATE KEY-----" (PKCS#1, PKCS#8, OpenSSH, EC, encrypted) and PGP's
// "-----BEGIN PGP PRIVATE KEY BLOCK-----", at `pos` in `text`.
bool pemPrivateKeyAt(std::string_view text, std::size_t pos) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  if (text.substr(pos, kBegin.size()) != kBegin) return false;
  const std::string_view rest = text.substr(pos + kBegin.size(), 80);
  const auto end = rest.find("-----");
  if (end == std::string_view::npos) return false;
  const std::string_view label = rest.substr(0, end);
  return endsWith(label, "PRIVATE KEY") || endsWith(label, "PRIVATE KEY BLOCK");
}

bool hasPemPrivateKey(std::string_view text) {
  for (std::size_t pos = text.find("-----BEGIN "); pos != std::string_view::npos;
       pos = text.find("-----BEGIN ", pos + 1)) {
    if (pemPrivateKeyAt(text, pos)) return true;
  }
  return false;
}

// `"key"` followed by optional blanks, a colon, optional blanks and `"value"` (JSON spacing
// varies).
bool jsonStringField(std::string_view text, std::string_view key, std::string_view value) {
  const std::string quotedKey = "\"" + std::string(key) + "\"";
  for (std::size_t pos = text.find(quotedKey); pos != std::string_view::npos;
       pos = text.find(quotedKey, pos + 1)) {
    std::size_t i = pos + quotedKey.size();
    auto skipBlanks = [&] {
      while (i < text.size() &&
             (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
        ++i;
      }
    };
    skipBlanks();
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    skipBlanks();
    if (text.substr(i, value.size() + 2) == "\"" + std::string(value) + "\"") return true;
  }
  return false;
}

bool isDotEnvName(std::string_view base) {
  if (base == ".env") return true;
  if (base.substr(0, 5) != ".env.") return false;
  // Templates that document variables rather than hold them.
  const std::string_view suffix = base.substr(5);
  return suffix != "example" && suffix != "sample" && suffix != "template" && suffix != "dist" &&
         suffix != "defaults";
}

bool lessByKey(std::string_view pathA, int catA, std::string_view pathB, int catB) {
  const int c = pathA.compare(pathB);
  return c != 0 ? c < 0 : catA < catB;
}

// Little-endian fixed-width integers for serialize()/deserialize().
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  template <typename T>
  void put(T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      out_.push_back(static_cast<char>(static_cast<std::uint64_t>(value) >> (8 * i) & 0xff));
    }
  }
  void bytes(std::string_view data) { out_.append(data); }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += sizeof(T);
    return static_cast<T>(value);
  }
  std::string_view bytes(std::uint64_t n) {
    need(n);
    const std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  bool atEnd() const { return pos_ == in_.size(); }

 private:
  void need(std::uint64_t n) const {
    if (n > in_.size() - pos_) throw Error("layer index data is truncated");
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

constexpr std::string_view kMagic = "IGLI";
constexpr std::uint32_t kFormatVersion = 1;

}  // namespace

std::string_view entryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kRegular:
      return "file";
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kCharDevice:
      return "char device";
    case EntryType::kBlockDevice:
      return "block device";
    case EntryType::kFifo:
      return "fifo";
    case EntryType::kWhiteout:
      return "whiteout";
    case EntryType::kOpaque:
      return "opaque marker";
  }
  return "unknown";
}

std::string_view secretKindName(SecretKind kind) {
  switch (kind) {
    case SecretKind::kNone:
      return "none";
    case SecretKind::kPrivateKey:
      return "PEM private key";
    case SecretKind::kDotEnv:
      return ".env file";
    case SecretKind::kGitDirectory:
      return ".git directory";
    case SecretKind::kNpmCredentials:
      return ".npmrc with an auth token";
    case SecretKind::kPypiCredentials:
      return ".pypirc with a password";
    case SecretKind::kNetrcCredentials:
      return ".netrc with a password";
    case SecretKind::kDockerCredentials:
      return "Docker config.json with registry credentials";
    case SecretKind::kAwsCredentials:
      return "AWS credentials file";
    case SecretKind::kGcpServiceAccount:
      return "GCP service-account key";
  }
  return "unknown";
}

std::string normalizeLayerPath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

SecretKind secretKindFromName(std::string_view normalizedPath, EntryType type) {
  const std::string_view base = baseName(normalizedPath);
  if (type == EntryType::kDirectory && base == ".git") return SecretKind::kGitDirectory;
  // A tar may hold `.git/HEAD` without an entry for `.git` itself.
  if (type == EntryType::kRegular && (base == "HEAD" || base == "config") &&
      baseName(parentOf(normalizedPath)) == ".git") {
    return SecretKind::kGitDirectory;
  }
  if (type == EntryType::kRegular && isDotEnvName(base)) return SecretKind::kDotEnv;
  return SecretKind::kNone;
}

bool isSecretCandidateName(std::string_view normalizedPath) {
  const std::string_view base = baseName(normalizedPath);
  return isKeyFileName(base) || base == ".npmrc" || base == ".pypirc" || base == ".netrc" ||
         hasTail(normalizedPath, ".docker/config.json") ||
         hasTail(normalizedPath, ".aws/credentials") || endsWith(base, ".json");
}

SecretKind secretKindFromContent(std::string_view normalizedPath, std::string_view content) {
  const std::string_view base = baseName(normalizedPath);
  if (base == ".npmrc" && (contains(content, "_auth") || contains(content, "_password"))) {
    return SecretKind::kNpmCredentials;
  }
  if (base == ".pypirc" && contains(content, "password")) return SecretKind::kPypiCredentials;
  if (base == ".netrc" && contains(content, "password")) return SecretKind::kNetrcCredentials;
  if (hasTail(normalizedPath, ".docker/config.json") &&
      (contains(content, "\"auth\"") || contains(content, "\"identitytoken\""))) {
    return SecretKind::kDockerCredentials;
  }
  if (hasTail(normalizedPath, ".aws/credentials") && contains(content, "aws_secret_access_key")) {
    return SecretKind::kAwsCredentials;
  }
  if (endsWith(base, ".json") && contains(content, "\"private_key\"") &&
      jsonStringField(content, "type", "service_account")) {
    return SecretKind::kGcpServiceAccount;
  }
  // Key files may carry a certificate first; any other file counts only when it starts with one.
  if (isKeyFileName(base) ? hasPemPrivateKey(content) : pemPrivateKeyAt(content, 0)) {
    return SecretKind::kPrivateKey;
  }
  return SecretKind::kNone;
}

// ---------------------------------------------------------------------------------------------
// LayerIndex

FileEntry LayerIndex::entry(std::size_t i) const {
  const Record& r = records_[i];
  FileEntry e;
  e.path = pathOf(r);
  e.linkTarget = std::string_view(arena_.data() + r.targetOffset, r.targetLength);
  e.size = r.size;
  e.mode = r.mode;
  e.uid = r.uid;
  e.gid = r.gid;
  e.type = r.type;
  e.secret = r.secret;
  return e;
}

std::size_t LayerIndex::lowerBound(std::string_view path) const {
  const auto it =
      std::lower_bound(records_.begin(), records_.end(), path,
                       [this](const Record& r, std::string_view p) { return pathOf(r) < p; });
  return static_cast<std::size_t>(it - records_.begin());
}

std::optional<FileEntry> LayerIndex::find(std::string_view path) const {
  // Content sorts first among equal paths, so the lower bound is it when it exists.
  const std::size_t i = lowerBound(path);
  if (i < records_.size() && pathOf(records_[i]) == path && categoryOf(records_[i].type) == 0) {
    return entry(i);
  }
  return std::nullopt;
}

std::size_t LayerIndex::memoryBytes() const {
  return sizeof(*this) + records_.capacity() * sizeof(Record) + arena_.capacity() +
         (passwd_ ? passwd_->capacity() : 0) + (group_ ? group_->capacity() : 0);
}

std::string LayerIndex::serialize() const {
  std::string out;
  out.reserve(64 + records_.size() * 36 + arena_.size() + (passwd_ ? passwd_->size() : 0) +
              (group_ ? group_->size() : 0));
  Writer w(out);
  w.bytes(kMagic);
  w.put<std::uint32_t>(kFormatVersion);
  w.put<std::uint64_t>(uncompressedBytes_);
  w.put<std::uint64_t>(records_.size());
  w.put<std::uint64_t>(arena_.size());
  for (const auto* captured : {&passwd_, &group_}) {
    w.put<std::uint8_t>(captured->has_value() ? 1 : 0);
    w.put<std::uint32_t>(captured->has_value() ? (*captured)->size() : 0);
    if (captured->has_value()) w.bytes(**captured);
  }
  for (const Record& r : records_) {
    w.put<std::uint64_t>(r.size);
    w.put<std::uint32_t>(r.pathOffset);
    w.put<std::uint32_t>(r.targetOffset);
    w.put<std::uint32_t>(r.mode);
    w.put<std::uint32_t>(r.uid);
    w.put<std::uint32_t>(r.gid);
    w.put<std::uint16_t>(r.pathLength);
    w.put<std::uint16_t>(r.targetLength);
    w.put<std::uint8_t>(static_cast<std::uint8_t>(r.type));
    w.put<std::uint8_t>(static_cast<std::uint8_t>(r.secret));
  }
  w.bytes(arena_);
  return out;
}

LayerIndex LayerIndex::deserialize(std::string_view data) {
  constexpr std::size_t kRecordBytes = 36;
  Reader in(data);
  if (data.size() < kMagic.size() || in.bytes(kMagic.size()) != kMagic) {
    throw Error("not a layer index (bad magic); rescan the layer");
  }
  const auto version = in.get<std::uint32_t>();
  if (version != kFormatVersion) {
    throw Error("layer index format version " + std::to_string(version) + " is not " +
                std::to_string(kFormatVersion) + "; rescan the layer");
  }
  LayerIndex index;
  index.uncompressedBytes_ = in.get<std::uint64_t>();
  const auto count = in.get<std::uint64_t>();
  const auto arenaSize = in.get<std::uint64_t>();
  if (arenaSize > UINT32_MAX || count > data.size() / kRecordBytes) {
    throw Error("layer index is corrupt: counts exceed the data");
  }
  for (auto* captured : {&index.passwd_, &index.group_}) {
    const auto present = in.get<std::uint8_t>();
    const auto size = in.get<std::uint32_t>();
    if (present > 1) throw Error("layer index is corrupt: bad flag");
    if (present) *captured = std::string(in.bytes(size));
  }
  index.records_.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    Record r{};
    r.size = in.get<std::uint64_t>();
    r.pathOffset = in.get<std::uint32_t>();
    r.targetOffset = in.get<std::uint32_t>();
    r.mode = in.get<std::uint32_t>();
    r.uid = in.get<std::uint32_t>();
    r.gid = in.get<std::uint32_t>();
    r.pathLength = in.get<std::uint16_t>();
    r.targetLength = in.get<std::uint16_t>();
    const auto type = in.get<std::uint8_t>();
    const auto secret = in.get<std::uint8_t>();
    if (type > static_cast<std::uint8_t>(EntryType::kOpaque) ||
        secret > static_cast<std::uint8_t>(SecretKind::kGcpServiceAccount)) {
      throw Error("layer index is corrupt: unknown entry type or secret kind");
    }
    r.type = static_cast<EntryType>(type);
    r.secret = static_cast<SecretKind>(secret);
    if (std::uint64_t{r.pathOffset} + r.pathLength > arenaSize ||
        std::uint64_t{r.targetOffset} + r.targetLength > arenaSize) {
      throw Error("layer index is corrupt: string outside the data");
    }
    index.records_.push_back(r);
  }
  index.arena_ = std::string(in.bytes(arenaSize));
  if (!in.atEnd()) throw Error("layer index is corrupt: trailing bytes");
  // Lookups binary-search, so the order is part of the format.
  for (std::size_t i = 1; i < index.records_.size(); ++i) {
    const Record& a = index.records_[i - 1];
    const Record& b = index.records_[i];
    if (!lessByKey(index.pathOf(a), categoryOf(a.type), index.pathOf(b), categoryOf(b.type))) {
      throw Error("layer index is corrupt: entries out of order");
    }
  }
  return index;
}

void LayerIndexBuilder::add(std::string_view normalizedPath, EntryType type, std::uint32_t mode,
                            std::uint32_t uid, std::uint32_t gid, std::uint64_t size,
                            std::string_view linkTarget, SecretKind secret) {
  LayerIndex::Record r{};
  r.size = size;
  r.pathOffset = static_cast<std::uint32_t>(index_.arena_.size());
  r.pathLength = static_cast<std::uint16_t>(normalizedPath.size());
  index_.arena_.append(normalizedPath);
  r.targetOffset = static_cast<std::uint32_t>(index_.arena_.size());
  r.targetLength = static_cast<std::uint16_t>(linkTarget.size());
  index_.arena_.append(linkTarget);
  r.mode = mode & 07777;
  r.uid = uid;
  r.gid = gid;
  r.type = type;
  r.secret = secret;
  index_.records_.push_back(r);
}

LayerIndex LayerIndexBuilder::build() && {
  auto& records = index_.records_;
  std::vector<std::uint32_t> order(records.size());
  std::iota(order.begin(), order.end(), 0u);
  auto key = [&](std::uint32_t i) {
    return std::pair{index_.pathOf(records[i]), categoryOf(records[i].type)};
  };
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    const auto [pa, ca] = key(a);
    const auto [pb, cb] = key(b);
    return lessByKey(pa, ca, pb, cb);
  });
  // Last tar member of each key wins, as when the tar is extracted; the arena is rebuilt so the
  // bytes of replaced duplicates are not kept.
  LayerIndex out;
  out.passwd_ = std::move(index_.passwd_);
  out.group_ = std::move(index_.group_);
  out.uncompressedBytes_ = index_.uncompressedBytes_;
  std::vector<std::uint32_t> kept;
  kept.reserve(order.size());
  std::size_t arenaBytes = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i + 1 < order.size() && key(order[i]) == key(order[i + 1])) continue;
    kept.push_back(order[i]);
    arenaBytes += records[order[i]].pathLength + records[order[i]].targetLength;
  }
  out.records_.reserve(kept.size());
  out.arena_.reserve(arenaBytes);
  for (const std::uint32_t i : kept) {
    LayerIndex::Record r = records[i];
    const std::string_view path = index_.pathOf(r);
    const std::string_view target(index_.arena_.data() + r.targetOffset, r.targetLength);
    r.pathOffset = static_cast<std::uint32_t>(out.arena_.size());
    out.arena_.append(path);
    r.targetOffset = static_cast<std::uint32_t>(out.arena_.size());
    out.arena_.append(target);
    out.records_.push_back(r);
  }
  index_ = LayerIndex();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Path globs

namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start < path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

bool componentMatch(std::string_view pattern, std::string_view name) {
  if (pattern.find_first_of("*?[\\") == std::string_view::npos) return pattern == name;
  const std::string p(pattern);
  const std::string n(name);
  return fnmatch(p.c_str(), n.c_str(), FNM_PATHNAME) == 0;
}

// Matches pattern components from `pi` against `path`, the rest of a normalized path, walked in
// place (this runs once per file per rule: no allocation).
bool matchPath(const std::vector<std::string_view>& pattern, std::size_t pi,
               std::string_view path) {
  while (pi < pattern.size()) {
    if (pattern[pi] == "**") {
      // Collapse runs of "**", then try the rest at every component boundary.
      while (pi + 1 < pattern.size() && pattern[pi + 1] == "**") ++pi;
      if (pi + 1 == pattern.size()) return true;
      while (true) {
        if (matchPath(pattern, pi + 1, path)) return true;
        if (path.empty()) return false;
        const auto slash = path.find('/');
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
      }
    }
    if (path.empty()) return false;
    const auto slash = path.find('/');
    if (!componentMatch(pattern[pi], path.substr(0, slash))) return false;
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    ++pi;
  }
  return path.empty();
}

}  // namespace

bool pathGlobMatch(std::string_view pattern, std::string_view path) {
  return matchPath(splitPath(pattern), 0, normalizeLayerPath(path));
}

// ---------------------------------------------------------------------------------------------
// MergedFilesystem

struct MergedFilesystem::LinkIndex {
  struct DirLink {
    std::string link;    // path of the symlink, e.g. "bin"
    std::string target;  // the directory it reaches, e.g. "usr/bin"
  };
  std::vector<DirLink> dirLinks;
  // Resolved file path -> symlinks and hardlinks that reach it.
  std::unordered_map<std::string, std::vector<std::string>> reverse;
  std::size_t bytes = 0;
};

std::string_view MergedFilesystem::pathOf(Ref ref) const {
  return layers_[ref.layer]->entry(ref.entry).path;
}

MergedEntry MergedFilesystem::toEntry(Ref ref) const {
  return MergedEntry{layers_[ref.layer]->entry(ref.entry), ref.layer};
}

MergedEntry MergedFilesystem::at(std::size_t i) const { return toEntry(merged_[i]); }

std::optional<std::size_t> MergedFilesystem::indexOf(std::string_view path) const {
  const auto it = std::lower_bound(merged_.begin(), merged_.end(), path,
                                   [this](Ref r, std::string_view p) { return pathOf(r) < p; });
  if (it != merged_.end() && pathOf(*it) == path) {
    return static_cast<std::size_t>(it - merged_.begin());
  }
  return std::nullopt;
}

bool MergedFilesystem::hasDescendants(std::string_view dir) const {
  const std::string prefix = std::string(dir) + "/";
  const auto it = std::lower_bound(merged_.begin(), merged_.end(), std::string_view(prefix),
                                   [this](Ref r, std::string_view p) { return pathOf(r) < p; });
  return it != merged_.end() && pathOf(*it).substr(0, prefix.size()) == prefix;
}

MergedFilesystem::MergedFilesystem(std::vector<std::shared_ptr<const LayerIndex>> layers)
    : layers_(std::move(layers)) {
  for (std::uint32_t l = 0; l < layers_.size(); ++l) {
    const LayerIndex& layer = *layers_[l];
    std::vector<bool> removed(merged_.size(), false);
    auto removeRange = [&](std::string_view prefixWithSlash) {
      auto less = [this](Ref r, std::string_view p) { return pathOf(r) < p; };
      const auto lo = std::lower_bound(merged_.begin(), merged_.end(), prefixWithSlash, less);
      std::string end(prefixWithSlash);
      end.back() = '0';  // '0' follows '/': the first path past every "prefix/..." one
      const auto hi = std::lower_bound(lo, merged_.end(), std::string_view(end), less);
      for (auto it = lo; it != hi; ++it) removed[it - merged_.begin()] = true;
    };
    auto removeBelow = [&](std::string_view dir) {
      if (dir.empty()) {
        removed.assign(merged_.size(), true);
      } else {
        removeRange(std::string(dir) + "/");
      }
    };
    // Whiteouts and opaque markers hide what the layers underneath wrote; a non-directory
    // replaces whatever was below its path (the runtime removes a directory it replaces).
    for (std::size_t i = 0; i < layer.size(); ++i) {
      const FileEntry e = layer.entry(i);
      if (e.type == EntryType::kWhiteout) {
        if (auto at = indexOf(e.path)) removed[*at] = true;
        removeBelow(e.path);
      } else if (e.type == EntryType::kOpaque) {
        removeBelow(e.path);
      } else if (e.type != EntryType::kDirectory) {
        removeBelow(e.path);
      }
    }
    std::vector<Ref> next;
    next.reserve(merged_.size() + layer.size());
    std::size_t m = 0;
    for (std::uint32_t i = 0; i < layer.size(); ++i) {
      const FileEntry e = layer.entry(i);
      if (e.isWhiteoutMarker()) continue;
      while (m < merged_.size() && pathOf(merged_[m]) < e.path) {
        if (!removed[m]) next.push_back(merged_[m]);
        ++m;
      }
      if (m < merged_.size() && pathOf(merged_[m]) == e.path) ++m;  // replaced
      if (e.type == EntryType::kHardlink && !layer.find(e.linkTarget)) {
        const auto below = indexOf(e.linkTarget);
        if (!below || removed[*below]) {
          throw Error("layer " + std::to_string(l + 1) + "/" + std::to_string(layers_.size()) +
                      ": hardlink /" + std::string(e.path) + " points to /" +
                      std::string(e.linkTarget) +
                      ", which exists in neither this nor an earlier layer; the container "
                      "runtime cannot unpack this image");
        }
      }
      next.push_back(Ref{l, i});
    }
    for (; m < merged_.size(); ++m) {
      if (!removed[m]) next.push_back(merged_[m]);
    }
    merged_ = std::move(next);
  }
  merged_.shrink_to_fit();

  // Which names reach which files: every symlink resolved once, hardlinks grouped by the file
  // they share, directory symlinks kept apart to re-root names below them.
  auto links = std::make_shared<LinkIndex>();
  auto hardlinkRoot = [this](std::string path) {
    for (int i = 0; i < kMaxLinkDepth; ++i) {
      const auto at = indexOf(path);
      if (!at) break;
      const MergedEntry e = this->at(*at);
      if (e.entry.type != EntryType::kHardlink) break;
      path = std::string(e.entry.linkTarget);
    }
    return path;
  };
  for (std::size_t i = 0; i < merged_.size(); ++i) {
    const MergedEntry e = at(i);
    if (e.entry.type == EntryType::kSymlink) {
      const Resolution r = resolve(e.entry.path);
      if (r.status != Resolution::Status::kFound) continue;
      if (!r.entry || r.entry->entry.type == EntryType::kDirectory) {
        // A link to the root itself ("rootfs -> /") would re-root every name endlessly.
        if (!r.path.empty()) links->dirLinks.push_back({std::string(e.entry.path), r.path});
      } else {
        links->reverse[hardlinkRoot(r.path)].emplace_back(e.entry.path);
      }
    } else if (e.entry.type == EntryType::kHardlink) {
      links->reverse[hardlinkRoot(std::string(e.entry.path))].emplace_back(e.entry.path);
    }
  }
  for (const auto& [file, names] : links->reverse) {
    links->bytes += file.capacity() + 64;
    for (const auto& name : names) links->bytes += name.capacity() + sizeof(name);
  }
  for (const auto& d : links->dirLinks) links->bytes += d.link.capacity() + d.target.capacity();
  links_ = std::move(links);
}

std::vector<MergedEntry> MergedFilesystem::entries() const {
  std::vector<MergedEntry> out;
  out.reserve(merged_.size());
  for (const Ref r : merged_) out.push_back(toEntry(r));
  return out;
}

std::vector<MergedEntry> MergedFilesystem::entriesFromLayer(std::size_t layer) const {
  std::vector<MergedEntry> out;
  for (const Ref r : merged_) {
    if (r.layer == layer) out.push_back(toEntry(r));
  }
  return out;
}

std::optional<MergedEntry> MergedFilesystem::find(std::string_view path) const {
  const auto at = indexOf(normalizeLayerPath(path));
  if (!at) return std::nullopt;
  return toEntry(merged_[*at]);
}

std::optional<std::size_t> MergedFilesystem::hiddenBy(std::size_t layer,
                                                      const FileEntry& entry) const {
  // What an upper layer holds at `at`, `entry`'s own path or a directory above it, that hides
  // `entry` from the layers underneath.
  auto hides = [&entry](const FileEntry& upper, bool ownPath) {
    switch (upper.type) {
      case EntryType::kWhiteout:
        return true;
      case EntryType::kOpaque:
        return !ownPath;  // an opaque directory keeps itself, hides what is below it
      case EntryType::kDirectory:
        return ownPath && entry.type != EntryType::kDirectory;  // directories merge
      default:
        return true;  // a file, link or device replaces the path, or what was below a directory
    }
  };
  for (std::size_t upper = layer + 1; upper < layers_.size(); ++upper) {
    const LayerIndex& index = *layers_[upper];
    std::string_view at = entry.path;
    for (bool ownPath = true;; ownPath = false) {
      for (std::size_t i = index.lowerBound(at); i < index.size(); ++i) {
        const FileEntry written = index.entry(i);
        if (written.path != at) break;
        if (hides(written, ownPath)) return upper;
      }
      if (at.empty()) break;
      at = parentOf(at);
    }
  }
  return std::nullopt;
}

MergedFilesystem::Resolution MergedFilesystem::resolve(std::string_view path,
                                                       bool followFinal) const {
  Resolution out;
  // Components still to walk, last first. Views point into `path` or into layer arenas, which
  // outlive this call.
  std::vector<std::string_view> pending = splitPath(path);
  std::reverse(pending.begin(), pending.end());
  std::string current;
  int links = 0;
  std::set<std::string> seenLinks;
  while (!pending.empty()) {
    const std::string_view part = pending.back();
    pending.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      current = std::string(parentOf(current));
      continue;
    }
    std::string candidate = current.empty() ? std::string(part) : current + "/" + std::string(part);
    const auto at = indexOf(candidate);
    if (!at && hasDescendants(candidate)) {
      // A directory the tar never listed itself but whose contents it holds: the runtime creates
      // it while unpacking.
      current = std::move(candidate);
      continue;
    }
    if (!at) {
      // Nothing there: report how far the walk got, with what was left.
      out.path = std::move(candidate);
      while (!pending.empty()) {
        if (pending.back() != ".") out.path += "/" + std::string(pending.back());
        pending.pop_back();
      }
      out.path = normalizeLayerPath(out.path);
      out.status = Resolution::Status::kNotFound;
      return out;
    }
    const MergedEntry e = toEntry(merged_[*at]);
    const bool last = pending.empty();
    if (e.entry.type == EntryType::kSymlink && (!last || followFinal)) {
      if (++links > kMaxLinkDepth) {
        out.status = Resolution::Status::kTooManyLinks;
        out.path = std::move(candidate);
        return out;
      }
      if (!seenLinks.insert(candidate).second) out.loop = true;
      const std::string_view target = e.entry.linkTarget;
      if (!target.empty() && target.front() == '/') current.clear();
      auto parts = splitPath(target);
      if (parts.empty() && !target.empty() && target.front() != '/') {
        out.status = Resolution::Status::kNotFound;
        out.path = std::move(candidate);
        return out;
      }
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(*it);
      continue;
    }
    if (!last && e.entry.type != EntryType::kDirectory) {
      out.status = Resolution::Status::kNotFound;  // ENOTDIR
      out.path = std::move(candidate);
      return out;
    }
    current = std::move(candidate);
  }
  out.status = Resolution::Status::kFound;
  out.path = current;
  if (const auto at = current.empty() ? std::nullopt : indexOf(current)) {
    out.entry = toEntry(merged_[*at]);
  }
  return out;
}

std::vector<std::string> MergedFilesystem::aliases(std::string_view path, std::size_t limit) const {
  const Resolution r = resolve(path);
  if (r.status != Resolution::Status::kFound) return {};
  std::string root = r.path;
  for (int i = 0; i < kMaxLinkDepth; ++i) {
    const auto at = indexOf(root);
    if (!at) break;
    const MergedEntry e = this->at(*at);
    if (e.entry.type != EntryType::kHardlink) break;
    root = std::string(e.entry.linkTarget);
  }
  // Names with the directory links already used to make them: re-using one would walk a link
  // cycle (`usr/lib/x -> ..`) forever.
  std::vector<std::pair<std::string, std::vector<std::size_t>>> work;
  std::set<std::string> names;
  auto addName = [&](std::string name, std::vector<std::size_t> used) {
    if (names.size() >= limit || !names.insert(name).second) return;
    work.emplace_back(std::move(name), std::move(used));
  };
  addName(root, {});
  if (const auto it = links_->reverse.find(root); it != links_->reverse.end()) {
    for (const auto& name : it->second) addName(name, {});
  }
  for (std::size_t w = 0; w < work.size() && names.size() < limit; ++w) {
    for (std::size_t d = 0; d < links_->dirLinks.size(); ++d) {
      const auto& link = links_->dirLinks[d];
      const std::string& name = work[w].first;
      if (name.size() > link.target.size() &&
          name.compare(0, link.target.size(), link.target) == 0 &&
          name[link.target.size()] == '/' &&
          std::find(work[w].second.begin(), work[w].second.end(), d) == work[w].second.end()) {
        std::vector<std::size_t> used = work[w].second;
        used.push_back(d);
        addName(link.link + name.substr(link.target.size()), std::move(used));
      }
    }
  }
  return {names.begin(), names.end()};
}

std::vector<MergedEntry> MergedFilesystem::glob(std::string_view pattern) const {
  std::vector<MergedEntry> out;
  const auto patternParts = splitPath(pattern);
  for (const Ref r : merged_) {
    if (matchPath(patternParts, 0, pathOf(r))) out.push_back(toEntry(r));
  }
  return out;
}

std::vector<PathMatch> MergedFilesystem::findReachable(std::string_view pattern) const {
  std::vector<PathMatch> out;
  for (ReachableMatch& match : findReachableAny({std::string(pattern)})) {
    out.push_back({std::move(match.name), match.file});
  }
  return out;
}

std::vector<ReachableMatch> MergedFilesystem::findReachableAny(
    const std::vector<std::string>& patterns) const {
  // A file matches only through a name whose last component matches the pattern's: its own
  // (directory links keep it) or one of its symlinks' and hardlinks'. So patterns are filed by
  // their last component: exact names in a hash map, globs tried one by one, and a trailing "**"
  // (any name) tried on every file.
  std::vector<std::vector<std::string_view>> parts;
  parts.reserve(patterns.size());
  std::unordered_map<std::string_view, std::vector<std::uint32_t>> byName;
  std::vector<std::uint32_t> byGlob;
  std::vector<std::uint32_t> anyName;
  for (std::uint32_t p = 0; p < patterns.size(); ++p) {
    parts.push_back(splitPath(patterns[p]));
    if (parts.back().empty()) continue;
    const std::string_view last = parts.back().back();
    if (last == "**") {
      anyName.push_back(p);
    } else if (last.find_first_of("*?[\\") != std::string_view::npos) {
      byGlob.push_back(p);
    } else {
      byName[last].push_back(p);
    }
  }
  auto addCandidates = [&](std::string_view name, std::vector<std::uint32_t>& to) {
    if (const auto it = byName.find(name); it != byName.end()) {
      to.insert(to.end(), it->second.begin(), it->second.end());
    }
    for (const std::uint32_t p : byGlob) {
      if (componentMatch(parts[p].back(), name)) to.push_back(p);
    }
  };
  // The patterns a file's links can match, found once per link rather than once per file.
  std::unordered_map<std::string_view, std::vector<std::uint32_t>> linkCandidates;
  for (const auto& [file, names] : links_->reverse) {
    std::vector<std::uint32_t>& candidates = linkCandidates[file];
    for (const auto& name : names) addCandidates(baseName(name), candidates);
  }
  auto belowDirLink = [this](std::string_view path) {
    return std::any_of(
        links_->dirLinks.begin(), links_->dirLinks.end(), [&](const LinkIndex::DirLink& d) {
          return path.size() > d.target.size() && path.substr(0, d.target.size()) == d.target &&
                 path[d.target.size()] == '/';
        });
  };

  std::vector<ReachableMatch> out;
  std::vector<std::uint32_t> candidates;
  auto matchName = [&](std::string name, const MergedEntry& file) {
    std::vector<std::uint32_t> matched;
    for (const std::uint32_t p : candidates) {
      if (matchPath(parts[p], 0, name)) matched.push_back(p);
    }
    if (!matched.empty()) out.push_back({std::move(name), file, std::move(matched)});
  };
  for (const Ref r : merged_) {
    const MergedEntry e = toEntry(r);
    // Each file once, by its own path: links are found as its aliases.
    if (e.entry.type == EntryType::kDirectory || e.entry.type == EntryType::kSymlink ||
        e.entry.type == EntryType::kHardlink) {
      continue;
    }
    candidates.assign(anyName.begin(), anyName.end());
    addCandidates(baseName(e.entry.path), candidates);
    const auto linked = linkCandidates.find(e.entry.path);
    if (linked != linkCandidates.end()) {
      candidates.insert(candidates.end(), linked->second.begin(), linked->second.end());
    }
    if (candidates.empty()) continue;
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    if (linked == linkCandidates.end() && !belowDirLink(e.entry.path)) {
      matchName(std::string(e.entry.path), e);
      continue;
    }
    for (std::string& name : aliases(e.entry.path)) matchName(std::move(name), e);
  }
  return out;
}

std::optional<std::string> MergedFilesystem::capturedFile(std::string_view path,
                                                          bool passwd) const {
  const Resolution r = resolve(path);
  if (r.status != Resolution::Status::kFound || r.path != path || !r.entry ||
      r.entry->entry.type != EntryType::kRegular) {
    return std::nullopt;
  }
  const LayerIndex& layer = *layers_[r.entry->layer];
  return passwd ? layer.passwd() : layer.group();
}

std::optional<std::string> MergedFilesystem::passwd() const {
  return capturedFile("etc/passwd", true);
}

std::optional<std::string> MergedFilesystem::group() const {
  return capturedFile("etc/group", false);
}

std::size_t MergedFilesystem::memoryBytes() const {
  return sizeof(*this) + merged_.capacity() * sizeof(Ref) + (links_ ? links_->bytes : 0);
}

}  // namespace imagegate::image
