#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "image/file_index.h"
#include "layers/media_type.h"

// Streams one layer blob, as the registry delivers it chunk by chunk, into an image::LayerIndex:
// sha256 verified on the compressed bytes in the caller's thread; decompressed with the fastest
// decoder (ISA-L, libzstd) and parsed as tar by libarchive on a worker thread. Nothing touches
// disk; memory stays bounded whatever the layer's size (a few MiB of chunks in flight plus the
// index itself).
namespace imagegate::registry {
class Digester;
}

namespace imagegate::layers {

/// Limits on what one layer may make the scanner do. Each error names the limit it hit.
struct ScanLimits {
  std::uint64_t maxUncompressedBytes = std::uint64_t{8} << 30;  ///< 8 GiB: gzip/zstd bombs.
  std::uint64_t maxEntries = 1'000'000;                         ///< tar members.
  std::size_t maxPathLength = 4096;         ///< bytes of a member name or link target (PATH_MAX).
  std::uint64_t maxIndexBytes = 256 << 20;  ///< path and link text collected for the index.
  int maxZstdWindowLog = 27;  ///< zstd decoder memory, 2^n bytes (see decompressor.h).
};

class LayerScanner {
 public:
  /// For `expectedSize` when the descriptor's size is not known (the CLI scanning a file).
  static constexpr std::uint64_t kUnknownSize = UINT64_MAX;

  /// `expectedDigest` is the descriptor's "sha256:<hex>" (or sha512); "" skips the check, which
  /// only the CLI may do: a registry blob is always verified. Throws Error for a malformed
  /// digest. Starts the tar worker thread.
  LayerScanner(const LayerMediaType& mediaType, const std::string& expectedDigest,
               std::uint64_t expectedSize, ScanLimits limits = {});
  /// Stops the worker cleanly at any point (the fetch failed, feed() threw, finish() never came).
  ~LayerScanner();
  LayerScanner(const LayerScanner&) = delete;
  LayerScanner& operator=(const LayerScanner&) = delete;

  /// The next bytes of the compressed blob: hashed here, decompressed and parsed on the worker.
  /// Blocks while the worker is behind (a few MiB are buffered), which pushes back on the
  /// download. Throws Error as soon as the layer is known to
  /// be unusable (more bytes than expected, corrupt compression, a limit hit, a corrupt tar
  /// header): the caller should stop fetching. After a throw the scanner is dead.
  void feed(std::string_view compressedChunk);

  /// The blob is complete: checks its size and digest, that the compressed stream ended where it
  /// should, and returns the index. Throws Error otherwise (no index from a layer whose digest
  /// does not match). Call once.
  image::LayerIndex finish();

  std::uint64_t compressedBytes() const { return compressedBytes_; }
  /// Decompressed so far (by the worker; exact once finish() returned).
  std::uint64_t uncompressedBytes() const;
  /// "sha256:<hex>" of what was fed, once finish() succeeded.
  const std::string& digest() const { return digest_; }

 private:
  struct Pipe;
  /// Counts the failure under `reason` (imagegate_layer_scan_failures_total) and rethrows.
  [[noreturn]] void fail(std::exception_ptr error, std::string_view reason);

  ScanLimits limits_;
  std::string expectedDigest_;
  std::uint64_t expectedSize_;
  std::chrono::steady_clock::time_point started_;  ///< For the scan duration metric.
  std::uint64_t compressedBytes_ = 0;
  std::string digest_;
  std::unique_ptr<registry::Digester> digester_;
  std::exception_ptr failed_;
  bool finished_ = false;
  std::unique_ptr<Pipe> pipe_;
};

}  // namespace imagegate::layers
