#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "image/image_ref.h"

// What imagegate knows about an image without running it: plain values, no I/O. The registry
// client produces them, the cache stores them, policies judge them.
namespace imagegate::image {

/// os/architecture[/variant], e.g. linux/amd64, linux/arm64/v8.
struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;

  /// Parses "os/arch[/variant]"; throws Error with the accepted forms on anything else.
  static Platform parse(const std::string& text);
  std::string str() const;
};

struct Descriptor {
  std::string mediaType;
  std::string digest;
  std::uint64_t size = 0;
};

/// The parts of an image config blob (OCI image config / Docker container config) rules use.
struct ImageConfig {
  std::string user;  ///< config.User as written: "", "root", "0", "65532:65532", "app".
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string workingDir;
  std::vector<std::string> exposedPorts;
  std::map<std::string, std::string> labels;
  std::vector<std::string> diffIds;  ///< rootfs.diff_ids
  std::size_t historyEntries = 0;
  /// created_by of each history entry that made a layer (empty_layer entries skipped), in layer
  /// order: what messages quote for "layer 4/5, RUN apk add bash". Shorter than the layers when
  /// the history is incomplete.
  std::vector<std::string> layerHistory;
  std::string os;
  std::string architecture;
};

/// Everything fetched for one image on one platform.
struct ImageFacts {
  ImageRef ref;
  std::string manifestDigest;  ///< Digest of the platform manifest (not of the index).
  std::string manifestMediaType;
  Platform platform;
  Descriptor config;
  std::vector<Descriptor> layers;
  ImageConfig imageConfig;

  /// Sum of the layer sizes in the manifest (compressed bytes).
  std::uint64_t compressedSize() const;
};

}  // namespace imagegate::image
