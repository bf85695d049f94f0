#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "layers/media_type.h"

// Streaming decoders for layer blobs behind one interface: compressed bytes in as they arrive,
// decompressed pieces pulled out (the tar reader pulls; the pull avoids copying the output). gzip
// uses ISA-L (about 3.5x zlib here), zstd uses libzstd.
namespace imagegate::layers {

class Decompressor {
 public:
  /// Receives each piece of output; the view is valid only during the call. May throw to stop.
  using Sink = std::function<void(std::string_view)>;

  virtual ~Decompressor() = default;
  /// The next compressed bytes. The view must stay valid until next() has returned empty (all of
  /// it consumed); only then may more input be set.
  virtual void setInput(std::string_view input) = 0;
  /// The next decompressed bytes, a view valid until the next call (into the decoder's buffer, or
  /// into the input itself when there is no compression); empty when it needs more input.
  /// Throws Error on corrupt data.
  virtual std::string_view next() = 0;
  /// The input is complete: throws Error when it stopped inside a gzip member or zstd frame, or
  /// when there was no input at all.
  virtual void finish() = 0;

  /// All of `input` through next() into `sink` (for callers that push).
  void write(std::string_view input, const Sink& sink) {
    setInput(input);
    for (std::string_view piece = next(); !piece.empty(); piece = next()) sink(piece);
  }
};

struct DecompressorOptions {
  /// zstd frames asking for a larger window (2^n bytes of memory) are refused. 27 is zstd's own
  /// default limit (128 MiB, what `zstd --long` writes); `zstd -19` needs 23, `-3` 21 or less.
  int maxZstdWindowLog = 27;
};

std::unique_ptr<Decompressor> makeDecompressor(Compression compression,
                                               const DecompressorOptions& options = {});

}  // namespace imagegate::layers
