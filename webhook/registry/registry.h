#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/deadline.h"
#include "common/error.h"
#include "registry/image_ref.h"

// The OCI distribution client's interface: what imagegate knows about an image without running
// it. Implementations: DistributionRegistry (real HTTPS registries) and, later, a caching
// decorator keyed by digest.
namespace imagegate::registry {

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

/// Why facts could not be had. The message names the image and the registry and never contains
/// credentials.
class FetchError : public Error {
 public:
  enum class Kind {
    kUnauthorized,    ///< 401 after auth, or wrong credentials
    kForbidden,       ///< 403
    kNotFound,        ///< 404: unknown repository, tag or digest
    kRateLimited,     ///< 429 beyond the deadline
    kServerError,     ///< 5xx
    kUnreachable,     ///< connection refused, DNS failure
    kTlsFailure,      ///< handshake or certificate verification failed
    kTimeout,         ///< deadline passed
    kInvalidContent,  ///< digest mismatch, unparsable manifest or config, size limit exceeded
    kNoMatchingPlatform,
  };
  FetchError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

class Registry {
 public:
  virtual ~Registry() = default;

  /// Resolves `ref` (an index resolves to the manifest for `platform`), fetches and verifies the
  /// manifest and the config blob. Throws FetchError.
  virtual ImageFacts fetchFacts(const ImageRef& ref, const Platform& platform,
                                Deadline deadline) = 0;
};

using RegistryPtr = std::shared_ptr<Registry>;

}  // namespace imagegate::registry
