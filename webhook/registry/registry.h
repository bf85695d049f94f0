#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/error.h"
#include "image/image_facts.h"

// The OCI distribution client's interface: how image facts are fetched. Implementations:
// DistributionRegistry (real HTTPS registries) and CachingRegistry (a decorator keyed by digest).
namespace imagegate::registry {

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

/// The kind as a metric label or log word: "timeout", "not_found", ...
constexpr std::string_view fetchErrorKindName(FetchError::Kind kind) {
  switch (kind) {
    case FetchError::Kind::kUnauthorized:
      return "unauthorized";
    case FetchError::Kind::kForbidden:
      return "forbidden";
    case FetchError::Kind::kNotFound:
      return "not_found";
    case FetchError::Kind::kRateLimited:
      return "rate_limited";
    case FetchError::Kind::kServerError:
      return "server_error";
    case FetchError::Kind::kUnreachable:
      return "unreachable";
    case FetchError::Kind::kTlsFailure:
      return "tls_failure";
    case FetchError::Kind::kTimeout:
      return "timeout";
    case FetchError::Kind::kInvalidContent:
      return "invalid_content";
    case FetchError::Kind::kNoMatchingPlatform:
      return "no_matching_platform";
  }
  return "other";
}

/// Receives a blob chunk by chunk as it streams in; may throw to abandon the download.
using BlobSink = std::function<void(std::string_view chunk)>;

class Registry {
 public:
  virtual ~Registry() = default;

  /// Resolves `ref` (an index resolves to the manifest for `platform`), fetches and verifies the
  /// manifest and the config blob. Throws FetchError.
  virtual image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform& platform,
                                       Deadline deadline) = 0;

  /// Streams the blob `blob` of `ref`'s repository to `sink`, never more than `blob.size` bytes,
  /// without keeping it: a layer of gigabytes costs the sink's memory only. The sink verifies
  /// the digest (it hashes what it reads anyway). Throws FetchError, or what the sink throws.
  virtual void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                         const BlobSink& sink, Deadline deadline) = 0;
};

using RegistryPtr = std::shared_ptr<Registry>;

}  // namespace imagegate::registry
