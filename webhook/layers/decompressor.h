#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "layers/media_type.h"

// Streaming decoders for layer blobs behind one interface: bytes in as they arrive, decompressed
// pieces out through a callback. gzip uses ISA-L (about 3.5x zlib here), zstd uses libzstd.
namespace imagegate::layers {

class Decompressor {
 public:
  /// Receives each piece of output; the view is valid only during the call. May throw to stop.
  using Sink = std::function<void(std::string_view)>;

  virtual ~Decompressor() = default;
  /// Decompresses all of `input`, calling `sink` zero or more times. Throws Error on corrupt data.
  virtual void write(std::string_view input, const Sink& sink) = 0;
  /// The input is complete: throws Error when it stopped inside a gzip member or zstd frame, or
  /// when there was no input at all.
  virtual void finish() = 0;
};

struct DecompressorOptions {
  /// zstd frames asking for a larger window (2^n bytes of memory) are refused. 27 is zstd's own
  /// default limit (128 MiB, what `zstd --long` writes); `zstd -19` needs 23, `-3` 21 or less.
  int maxZstdWindowLog = 27;
};

std::unique_ptr<Decompressor> makeDecompressor(Compression compression,
                                               const DecompressorOptions& options = {});

}  // namespace imagegate::layers
