#include "layers/layer_scanner.h"

#include <archive.h>
#include <archive_entry.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"
#include "layers/decompressor.h"
#include "metrics/metrics.h"
#include "registry/digest.h"

namespace imagegate::layers {

namespace {

// Compressed bytes travel to the worker in chunks of this size, at most kQueuedChunks waiting:
// with the one being filled and the one being decoded, ~6 MiB in flight, plus the decoder's
// output buffer (512 KiB) and its window.
constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::size_t kQueuedChunks = 4;
// Regular files up to this size may be read: secrets and etc/passwd, etc/group.
constexpr std::uint64_t kSmallFileBytes = 64 * 1024;

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// Scan metrics, declared here and only here.
metrics::Counter& layersScanned() {
  static metrics::Counter& counter = metrics::defaultRegistry()
                                         .counter("imagegate_layers_scanned_total",
                                                  "Layer blobs indexed completely, digest verified")
                                         .get();
  return counter;
}

metrics::CounterFamily& scannedBytes() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_layer_scanned_bytes_total",
      "Bytes of layers indexed completely: the blob as fetched (compressed) and the tar stream "
      "(uncompressed)",
      {"stream"}, metrics::FamilyOptions{2, {}});
  return family;
}

metrics::Histogram& scanSeconds() {
  static metrics::Histogram& histogram =
      metrics::defaultRegistry()
          .histogram("imagegate_layer_scan_duration_seconds",
                     "Time from a layer's first byte fed to its index, download included for "
                     "layers streamed from a registry",
                     {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300})
          .get();
  return histogram;
}

metrics::CounterFamily& scanFailures() {
  static metrics::CounterFamily& family = metrics::defaultRegistry().counter(
      "imagegate_layer_scan_failures_total",
      "Layer scans that gave no index, by reason: digest_mismatch, size_mismatch (more or fewer "
      "bytes than the descriptor says), invalid_content (corrupt compression or tar, a limit "
      "hit), abandoned (the download stopped before the end)",
      {"reason"}, metrics::FamilyOptions{8, {}});
  return family;
}

[[maybe_unused]] const bool kScanMetricsDeclared =
    (layersScanned(), scannedBytes(), scanSeconds(), scanFailures(), true);

}  // namespace

// The bridge between the pushing network and the pulling libarchive: a bounded queue of
// compressed chunks. The worker thread decompresses them straight into the buffers libarchive's
// read callback returns (no copy of the uncompressed stream) while the feeding thread only
// hashes and queues; that puts the two costly steps, sha256 and inflate, on different cores.
struct LayerScanner::Pipe {
  Pipe(const ScanLimits& scanLimits, std::unique_ptr<Decompressor> decoder)
      : limits(scanLimits), decompressor(std::move(decoder)) {}

  const ScanLimits limits;
  std::unique_ptr<Decompressor> decompressor;  // the worker's
  std::atomic<std::uint64_t> uncompressedBytes{0};

  std::mutex mutex;
  std::condition_variable dataReady;   // worker waits: a chunk, eof or abort
  std::condition_variable spaceReady;  // feeder waits: room in the queue or the worker done
  std::deque<std::vector<char>> queue;
  std::vector<std::vector<char>> spare;  // recycled chunk buffers
  bool eof = false;
  bool abort = false;
  bool workerDone = false;
  std::exception_ptr workerError;
  image::LayerIndexBuilder builder;  // the worker's until it is done

  std::vector<char> filling;         // feeder side only
  std::vector<char> decoding;        // worker side only: the chunk the decompressor reads
  std::exception_ptr callbackError;  // worker side: what stopped the read callback
  std::thread worker;

  std::vector<char> takeBuffer() {
    std::vector<char> buffer;
    {
      std::lock_guard lock(mutex);
      if (!spare.empty()) {
        buffer = std::move(spare.back());
        spare.pop_back();
      }
    }
    buffer.clear();
    buffer.reserve(kChunkBytes);
    return buffer;
  }

  // Feeder: copies `data` into chunks and hands full ones to the worker; blocks while the queue
  // is full.
  void append(std::string_view data) {
    while (!data.empty()) {
      const std::size_t n = std::min(data.size(), kChunkBytes - filling.size());
      filling.insert(filling.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
      data.remove_prefix(n);
      if (filling.size() == kChunkBytes) {
        push(std::move(filling));
        filling = takeBuffer();
      }
    }
  }

  void push(std::vector<char> chunk) {
    std::unique_lock lock(mutex);
    spaceReady.wait(lock, [&] { return queue.size() < kQueuedChunks || workerDone || abort; });
    if (workerDone || abort) {
      spare.push_back(std::move(chunk));  // the worker failed: the rest is not needed
      return;
    }
    queue.push_back(std::move(chunk));
    dataReady.notify_one();
  }

  void closeInput() {
    if (!filling.empty()) push(std::move(filling));
    std::lock_guard lock(mutex);
    eof = true;
    dataReady.notify_one();
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      abort = true;
    }
    dataReady.notify_all();
    spaceReady.notify_all();
    if (worker.joinable()) worker.join();
  }

  bool workerFailed() {
    std::lock_guard lock(mutex);
    return workerError != nullptr;
  }

  // Worker: the next decompressed bytes (valid until the next call), or empty at the end of the
  // blob. Throws Error for corrupt or truncated compression, the uncompressed limit, or abort.
  std::string_view pull() {
    while (true) {
      const std::string_view out = decompressor->next();
      if (!out.empty()) {
        const std::uint64_t total = uncompressedBytes += out.size();
        if (total > limits.maxUncompressedBytes) {
          throw Error("layer is larger than " + mib(limits.maxUncompressedBytes) +
                      " uncompressed (ScanLimits::maxUncompressedBytes): a compression bomb, or "
                      "a layer too large to judge");
        }
        return out;
      }
      {
        std::unique_lock lock(mutex);
        if (decoding.capacity() > 0) spare.push_back(std::move(decoding));
        decoding = std::vector<char>();
        dataReady.wait(lock, [&] { return !queue.empty() || eof || abort; });
        if (abort) throw Error("layer scan cancelled");
        if (queue.empty()) {
          lock.unlock();
          decompressor->finish();  // the blob ended: inside a gzip member or zstd frame?
          return {};
        }
        decoding = std::move(queue.front());
        queue.pop_front();
        spaceReady.notify_one();
      }
      decompressor->setInput(std::string_view(decoding.data(), decoding.size()));
    }
  }

  static la_ssize_t readCallback(struct archive* archive, void* self, const void** buffer) {
    auto* pipe = static_cast<Pipe*>(self);
    // No exception may cross libarchive's C frames: keep it, and let scanTar() rethrow it.
    try {
      const std::string_view out = pipe->pull();
      *buffer = out.data();
      return static_cast<la_ssize_t>(out.size());
    } catch (...) {
      pipe->callbackError = std::current_exception();
      archive_set_error(archive, EIO, "layer stream failed");
      return -1;
    }
  }

  void run() {
    try {
      scanTar();
      // The tar's end-of-archive marker may come before the blob's end: read the rest too, so a
      // truncated or corrupt stream (and a bomb hidden behind the tar) still fails.
      while (!pull().empty()) {
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      workerError = std::current_exception();
    }
    std::lock_guard lock(mutex);
    workerDone = true;
    spaceReady.notify_all();
  }

  // Throws what stopped the read callback, else libarchive's own message.
  [[noreturn]] void throwArchiveError(struct archive* a, const std::string& context);

  /// One tar member as the index records it.
  struct TarMember {
    std::string path;    ///< Normalized: relative to the root, no "." or "..".
    std::string target;  ///< Symlink or hardlink target (hardlinks normalized).
    image::EntryType type = image::EntryType::kRegular;
    std::uint32_t mode = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint64_t size = 0;
  };

  void scanTar();
  /// The next member's header, or null at the end; counts members against the limit.
  struct archive_entry* nextHeader(struct archive* a, std::uint64_t& members);
  /// The member's path, type, link target and attributes, within the limits; nullopt for a
  /// member nothing judges (sockets, unknown types).
  std::optional<TarMember> readMember(struct archive_entry* entry, std::uint64_t members);
  /// Records a whiteout or opaque marker; false when the member is an ordinary one.
  bool recordWhiteout(const TarMember& member);
  /// Records a file, reading the content of the small ones secrets and users are judged by.
  void recordFile(struct archive* a, const TarMember& member);
};

namespace {

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

std::string archiveError(struct archive* a) {
  const char* message = archive_error_string(a);
  return message != nullptr ? message : "unknown libarchive error";
}

std::uint32_t clampId(la_int64_t id) {
  return id < 0 || id > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(id);
}

// Reads up to `n` bytes of the current entry's data.
std::string readData(struct archive* a, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const la_ssize_t r = archive_read_data(a, out.data() + got, n - got);
    if (r < 0) throw Error("layer tar is corrupt: " + archiveError(a));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

}  // namespace

void LayerScanner::Pipe::throwArchiveError(struct archive* a, const std::string& context) {
  if (callbackError) std::rethrow_exception(callbackError);
  throw Error(context + ": " + archiveError(a));
}

void LayerScanner::Pipe::scanTar() {
  std::unique_ptr<struct archive, ArchiveCloser> owner(archive_read_new());
  struct archive* a = owner.get();
  if (a == nullptr) throw Error("cannot allocate a tar reader (out of memory)");
  // Tar only and no filters: the bytes arrive decompressed already (by ISA-L or libzstd, much
  // faster than libarchive's zlib), and a tar nested in another compression is no valid layer.
  archive_read_support_format_tar(a);
  // Names as the bytes in the tar, whatever the process locale: pax UTF-8 is not converted (a
  // failed conversion would lose the name), and rules compare bytes.
  archive_read_set_options(a, "tar:hdrcharset=BINARY");
  if (archive_read_open(a, this, nullptr, &Pipe::readCallback, nullptr) != ARCHIVE_OK) {
    throwArchiveError(a, "layer is not a tar archive");
  }
  std::uint64_t members = 0;
  while (struct archive_entry* entry = nextHeader(a, members)) {
    std::optional<TarMember> member = readMember(entry, members);
    if (!member || recordWhiteout(*member) || member->path.empty()) continue;
    recordFile(a, *member);
  }
}

struct archive_entry* LayerScanner::Pipe::nextHeader(struct archive* a, std::uint64_t& members) {
  struct archive_entry* entry = nullptr;
  const int rc = archive_read_next_header(a, &entry);
  if (rc == ARCHIVE_EOF) return nullptr;
  // ARCHIVE_RETRY is a damaged header libarchive would skip past; a listing with holes could
  // hide exactly the file a rule looks for, so it is an error like the fatal ones.
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
    // Decompression errors and limits come from the read callback; the rest are libarchive's
    // ("Damaged tar archive", "Truncated tar archive", "Special header too large").
    throwArchiveError(a, "layer tar is corrupt at member " + std::to_string(members + 1));
  }
  if (++members > limits.maxEntries) {
    throw Error("layer has more than " + std::to_string(limits.maxEntries) +
                " tar members (ScanLimits::maxEntries)");
  }
  return entry;
}

namespace {

/// The entry type of a tar member that is not a hardlink; nullopt for sockets and unknown types,
/// which no rule judges and no runtime extracts.
std::optional<image::EntryType> entryTypeOf(struct archive_entry* entry) {
  using image::EntryType;
  switch (archive_entry_filetype(entry)) {
    case AE_IFREG:
      return EntryType::kRegular;
    case AE_IFDIR:
      return EntryType::kDirectory;
    case AE_IFLNK:
      return EntryType::kSymlink;
    case AE_IFCHR:
      return EntryType::kCharDevice;
    case AE_IFBLK:
      return EntryType::kBlockDevice;
    case AE_IFIFO:
      return EntryType::kFifo;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<LayerScanner::Pipe::TarMember> LayerScanner::Pipe::readMember(
    struct archive_entry* entry, std::uint64_t members) {
  const char* rawName = archive_entry_pathname(entry);
  if (rawName == nullptr) {
    throw Error("layer tar is corrupt: member " + std::to_string(members) + " has no name");
  }
  const std::string_view name(rawName);
  if (name.size() > limits.maxPathLength) {
    throw Error("layer tar member " + std::to_string(members) + " has a " +
                std::to_string(name.size()) + "-byte path, longer than " +
                std::to_string(limits.maxPathLength) + " (ScanLimits::maxPathLength)");
  }
  TarMember member;
  // Absolute and `..` paths are normalized, not rejected: the runtime puts them under the root
  // (containerd resolves `..` lexically within it), so the index shows where they land.
  member.path = image::normalizeLayerPath(name);
  if (const char* hardlink = archive_entry_hardlink(entry)) {
    member.type = image::EntryType::kHardlink;
    member.target = image::normalizeLayerPath(hardlink);
  } else {
    const auto type = entryTypeOf(entry);
    if (!type) return std::nullopt;
    member.type = *type;
    const char* symlink = archive_entry_symlink(entry);
    if (member.type == image::EntryType::kSymlink && symlink != nullptr) member.target = symlink;
  }
  if (member.target.size() > limits.maxPathLength) {
    throw Error("layer tar member /" + member.path + " has a " +
                std::to_string(member.target.size()) + "-byte link target, longer than " +
                std::to_string(limits.maxPathLength) + " (ScanLimits::maxPathLength)");
  }
  if (builder.stringBytes() + member.path.size() + member.target.size() > limits.maxIndexBytes) {
    throw Error("layer's paths exceed " + mib(limits.maxIndexBytes) +
                " of index (ScanLimits::maxIndexBytes)");
  }
  member.mode = static_cast<std::uint32_t>(archive_entry_mode(entry));
  member.uid = clampId(archive_entry_uid(entry));
  member.gid = clampId(archive_entry_gid(entry));
  const la_int64_t rawSize = archive_entry_size(entry);
  member.size = rawSize > 0 ? static_cast<std::uint64_t>(rawSize) : 0;
  return member;
}

bool LayerScanner::Pipe::recordWhiteout(const TarMember& member) {
  // Whiteouts are markers for the layers underneath, recorded as such and never as files.
  const auto slash = member.path.rfind('/');
  const std::string_view path(member.path);
  const std::string_view base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string parent =
      slash == std::string::npos ? std::string() : member.path.substr(0, slash);
  if (base == ".wh..wh..opq") {
    builder.add(parent, image::EntryType::kOpaque, 0, 0, 0, 0);
    return true;
  }
  if (base.substr(0, 8) == ".wh..wh.") return true;  // aufs bookkeeping (.wh..wh.plnk etc.)
  if (base.substr(0, 4) != ".wh.") return false;
  if (base.size() > 4) {
    builder.add(
        parent.empty() ? std::string(base.substr(4)) : parent + "/" + std::string(base.substr(4)),
        image::EntryType::kWhiteout, 0, 0, 0, 0);
  }
  return true;
}

void LayerScanner::Pipe::recordFile(struct archive* a, const TarMember& member) {
  using image::EntryType;
  image::SecretKind secret = image::secretKindFromName(member.path, member.type);
  const bool isPasswd = member.path == "etc/passwd";
  const bool isGroup = member.path == "etc/group";
  const auto read = [&](std::size_t n) {
    try {
      return readData(a, n);
    } catch (const Error&) {
      if (callbackError) std::rethrow_exception(callbackError);
      throw;
    }
  };
  std::optional<std::string> content;
  if (member.type == EntryType::kRegular && member.size > 0 && member.size <= kSmallFileBytes) {
    if (isPasswd || isGroup || image::isSecretCandidateName(member.path)) {
      content = read(member.size);
    } else {
      // Any small file starting with a PEM private-key header counts: peek, read on only then.
      std::string head = read(std::min<std::uint64_t>(member.size, 11));
      if (head == "-----BEGIN ") content = head + read(member.size - head.size());
    }
  }
  if (content && secret == image::SecretKind::kNone) {
    secret = image::secretKindFromContent(member.path, *content);
  }
  if (isPasswd) {
    builder.setPasswd(member.type == EntryType::kRegular ? std::move(content) : std::nullopt);
  } else if (isGroup) {
    builder.setGroup(member.type == EntryType::kRegular ? std::move(content) : std::nullopt);
  }
  builder.add(member.path, member.type, member.mode, member.uid, member.gid, member.size,
              member.target, secret);
  if (archive_read_data_skip(a) < ARCHIVE_WARN) {
    throwArchiveError(a, "layer tar is corrupt in /" + member.path);
  }
}

// ---------------------------------------------------------------------------------------------

LayerScanner::LayerScanner(const LayerMediaType& mediaType, const std::string& expectedDigest,
                           std::uint64_t expectedSize, ScanLimits limits)
    : limits_(limits),
      expectedDigest_(expectedDigest),
      expectedSize_(expectedSize),
      started_(std::chrono::steady_clock::now()) {
  // The index stores path lengths in 16 bits.
  limits_.maxPathLength = std::min<std::size_t>(limits_.maxPathLength, UINT16_MAX);
  const auto parsed = registry::parseDigest(expectedDigest_);
  if (!expectedDigest_.empty() && !parsed) {
    throw Error("layer digest '" + expectedDigest_ +
                "' is not a valid sha256:<64 hex> or sha512:<128 hex> digest");
  }
  digester_ = std::make_unique<registry::Digester>(parsed ? parsed->algorithm : "sha256");
  pipe_ = std::make_unique<Pipe>(
      limits_,
      makeDecompressor(mediaType.compression, DecompressorOptions{limits_.maxZstdWindowLog}));
  pipe_->filling = pipe_->takeBuffer();
  pipe_->worker = std::thread([pipe = pipe_.get()] { pipe->run(); });
}

LayerScanner::~LayerScanner() {
  if (!finished_ && !failed_) scanFailures().labels({"abandoned"}).inc();
  pipe_->stop();
}

std::uint64_t LayerScanner::uncompressedBytes() const { return pipe_->uncompressedBytes; }

void LayerScanner::fail(std::exception_ptr error, std::string_view reason) {
  scanFailures().labels({reason}).inc();
  failed_ = error;
  pipe_->stop();
  std::rethrow_exception(error);
}

void LayerScanner::feed(std::string_view compressedChunk) {
  if (failed_) std::rethrow_exception(failed_);
  if (finished_) throw Error("layer scanner: feed() after finish()");
  std::string_view reason = "invalid_content";
  try {
    compressedBytes_ += compressedChunk.size();
    if (expectedSize_ != kUnknownSize && compressedBytes_ > expectedSize_) {
      reason = "size_mismatch";
      throw Error("layer blob is larger than the " + std::to_string(expectedSize_) +
                  " bytes its descriptor gives; the registry sent the wrong blob");
    }
    digester_->update(compressedChunk);
    pipe_->append(compressedChunk);
    if (pipe_->workerFailed()) {
      pipe_->stop();
      std::rethrow_exception(pipe_->workerError);
    }
  } catch (...) {
    fail(std::current_exception(), reason);
  }
}

image::LayerIndex LayerScanner::finish() {
  if (failed_) std::rethrow_exception(failed_);
  if (finished_) throw Error("layer scanner: finish() called twice");
  finished_ = true;
  std::string_view reason = "invalid_content";
  try {
    if (expectedSize_ != kUnknownSize && compressedBytes_ != expectedSize_) {
      reason = "size_mismatch";
      throw Error("layer blob has " + std::to_string(compressedBytes_) + " bytes, not the " +
                  std::to_string(expectedSize_) + " its descriptor gives");
    }
    digest_ = digester_->finish();
    if (!expectedDigest_.empty() && digest_ != expectedDigest_) {
      reason = "digest_mismatch";
      throw Error("layer blob digest mismatch: expected " + expectedDigest_ + ", got " + digest_ +
                  "; the blob is corrupt or not the one the manifest names");
    }
    pipe_->closeInput();
    pipe_->worker.join();
    if (pipe_->workerError) std::rethrow_exception(pipe_->workerError);
  } catch (...) {
    fail(std::current_exception(), reason);
  }
  pipe_->builder.setUncompressedBytes(pipe_->uncompressedBytes);
  layersScanned().inc();
  scannedBytes().labels({"compressed"}).inc(compressedBytes_);
  scannedBytes().labels({"uncompressed"}).inc(pipe_->uncompressedBytes);
  scanSeconds().observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  return std::move(pipe_->builder).build();
}

}  // namespace imagegate::layers
