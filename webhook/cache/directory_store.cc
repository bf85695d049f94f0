#include "cache/directory_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "registry/digest.h"

namespace imagegate::cache {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempSuffix = ".tmp";
// A layer index of a million files is about 60 MB; nothing larger is ever written.
constexpr std::size_t kMaxEntryFileBytes = std::size_t{256} << 20;

/// Writes `data` to `path` whole, or throws Error with the reason.
void writeWhole(const fs::path& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot create " + path.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw Error("cannot write " + path.string() + ": " + reason);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw Error("cannot write " + path.string() + ": " + std::strerror(errno));
}

/// The whole file, up to kMaxEntryFileBytes; sized by fstat, so a small entry costs a small
/// buffer (readBoundedFile allocates its whole limit). Throws Error when it cannot be read.
std::string readEntryFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<std::uint64_t>(info.st_size) > kMaxEntryFileBytes) {
    ::close(fd);
    throw Error(path.string() + " is not a regular file within the size limit");
  }
  std::string data(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shorter than fstat said: the envelope check reports it truncated
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return data;
}

}  // namespace

DirectoryStore::DirectoryStore(DirectoryStoreOptions options) : options_(std::move(options)) {
  std::error_code ec;
  for (const EntryKind kind : {EntryKind::kImageFacts, EntryKind::kLayerIndex}) {
    fs::create_directories(options_.dir / entryKindName(kind), ec);
    if (ec) {
      throw Error("cannot use the cache directory " + options_.dir.string() + ": " + ec.message());
    }
  }
  std::vector<std::pair<fs::file_time_type, fs::path>> found;
  for (const EntryKind kind : {EntryKind::kImageFacts, EntryKind::kLayerIndex}) {
    for (const auto& item : fs::directory_iterator(options_.dir / entryKindName(kind), ec)) {
      if (!item.is_regular_file(ec)) continue;
      if (item.path().string().ends_with(kTempSuffix)) {
        fs::remove(item.path(), ec);  // a write that a crash interrupted
        continue;
      }
      found.emplace_back(item.last_write_time(ec), item.path());
    }
  }
  // Oldest first, so the least recently written files are the first to go.
  std::sort(found.begin(), found.end());
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [time, path] : found)
    track(path, static_cast<std::size_t>(fs::file_size(path, ec)));
  evictOverBudget();
  log::info("cache directory ready",
            {{"dir", options_.dir.string()}, {"entries", files_.size()}, {"bytes", bytes_}});
}

fs::path DirectoryStore::pathOf(EntryKind kind, const std::string& key) const {
  return options_.dir / entryKindName(kind) / registry::sha256Digest(key).substr(7);
}

std::optional<std::string> DirectoryStore::load(EntryKind kind, const std::string& key) {
  const fs::path path = pathOf(kind, key);
  std::string envelope;
  try {
    envelope = readEntryFile(path);
  } catch (const Error&) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++misses_;
    untrack(path);
    return std::nullopt;
  }
  try {
    std::string payload = unwrapEntry(envelope, kind, key);
    std::lock_guard<std::mutex> lock(mutex_);
    ++hits_;
    track(path, envelope.size());
    return payload;
  } catch (const Error& e) {
    discard(path, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    ++misses_;
    return std::nullopt;
  }
}

void DirectoryStore::save(EntryKind kind, const std::string& key, std::string_view payload) {
  static std::atomic<std::uint64_t> sequence{0};
  const std::string envelope = wrapEntry(kind, key, payload);
  if (envelope.size() > options_.maxBytes) return;
  const fs::path path = pathOf(kind, key);
  const fs::path temp = path.string() + "." + std::to_string(::getpid()) + "." +
                        std::to_string(++sequence) + std::string(kTempSuffix);
  try {
    writeWhole(temp, envelope);
    std::error_code ec;
    fs::rename(temp, path, ec);
    if (ec) throw Error("cannot rename " + temp.string() + ": " + ec.message());
  } catch (const Error& e) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    log::warn("cannot write a cache file; continuing without it", {{"error", e.what()}});
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  track(path, envelope.size());
  evictOverBudget();
}

CacheStats DirectoryStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {files_.size(), bytes_, hits_, misses_, evictions_};
}

void DirectoryStore::track(const fs::path& path, std::size_t bytes) {
  File& file = files_[path];
  bytes_ = bytes_ - file.bytes + bytes;
  file.bytes = bytes;
  file.lastUse = ++useCounter_;
}

void DirectoryStore::untrack(const fs::path& path) {
  const auto found = files_.find(path);
  if (found == files_.end()) return;
  bytes_ -= found->second.bytes;
  files_.erase(found);
}

void DirectoryStore::evictOverBudget() {
  while (bytes_ > options_.maxBytes && !files_.empty()) {
    const auto oldest = std::min_element(
        files_.begin(), files_.end(),
        [](const auto& a, const auto& b) { return a.second.lastUse < b.second.lastUse; });
    std::error_code ignored;
    fs::remove(oldest->first, ignored);
    bytes_ -= oldest->second.bytes;
    files_.erase(oldest);
    ++evictions_;
  }
}

void DirectoryStore::discard(const fs::path& path, const std::string& reason) {
  log::warn("ignoring a cache file that cannot be trusted; removing it",
            {{"path", path.string()}, {"reason", reason}});
  std::error_code ignored;
  fs::remove(path, ignored);
  std::lock_guard<std::mutex> lock(mutex_);
  untrack(path);
}

}  // namespace imagegate::cache
