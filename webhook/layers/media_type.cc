#include "layers/media_type.h"

#include <array>

#include "common/error.h"

namespace imagegate::layers {

std::string_view compressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "uncompressed";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

LayerMediaType classifyLayerMediaType(std::string_view mediaType) {
  struct Known {
    std::string_view type;
    Compression compression;
    bool foreign;
  };
  static constexpr std::array<Known, 10> kKnown{{
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone, false},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip, false},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd, false},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip, false},
      // Written by docker buildx/containerd for zstd layers in Docker manifests.
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", Compression::kZstd, false},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone, true},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip, true},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd, true},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip, true},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", Compression::kNone, true},
  }};
  for (const Known& known : kKnown) {
    if (known.type == mediaType) {
      return LayerMediaType{std::string(mediaType), known.compression, known.foreign};
    }
  }
  throw Error("unsupported layer media type '" + std::string(mediaType) +
              "': imagegate scans OCI and Docker tar layers, uncompressed, gzip or zstd");
}

Compression sniffCompression(std::string_view head) {
  if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') return Compression::kGzip;
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

LayerMediaType ociLayerMediaType(Compression compression) {
  switch (compression) {
    case Compression::kGzip:
      return classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar+gzip");
    case Compression::kZstd:
      return classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar+zstd");
    case Compression::kNone:
      break;
  }
  return classifyLayerMediaType("application/vnd.oci.image.layer.v1.tar");
}

}  // namespace imagegate::layers
