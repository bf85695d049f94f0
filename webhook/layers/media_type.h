#pragma once

#include <optional>
#include <string>
#include <string_view>

// Which layer blobs imagegate can scan, and how they are compressed.
namespace imagegate::layers {

enum class Compression { kNone, kGzip, kZstd };

std::string_view compressionName(Compression compression);

struct LayerMediaType {
  std::string mediaType;
  Compression compression = Compression::kNone;
  /// Foreign / non-distributable layers (Windows base layers and the like) live outside the
  /// registry: they are reported, not fetched.
  bool foreign = false;
};

/// Classifies an OCI or Docker layer media type; throws Error naming an unknown type.
LayerMediaType classifyLayerMediaType(std::string_view mediaType);

/// The compression the first bytes of a blob show (gzip 1f 8b, zstd 28 b5 2f fd, else none):
/// for files given without a media type.
Compression sniffCompression(std::string_view head);

/// The media type of an OCI layer with this compression.
LayerMediaType ociLayerMediaType(Compression compression);

}  // namespace imagegate::layers
