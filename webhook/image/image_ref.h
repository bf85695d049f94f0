#pragma once

#include <string>
#include <string_view>
#include <tuple>

#include "common/error.h"

namespace imagegate::image {

/// A container image reference normalized as Docker does it:
///
///     "nginx"                  -> docker.io/library/nginx:latest (tag implied)
///     "acme/app:1"             -> docker.io/acme/app:1
///     "index.docker.io/x/y"    -> docker.io/x/y:latest
///     "host:5000/x"            -> registry "host:5000" (a port, not a tag), tag latest
///     "ghcr.io/a/b@sha256:.."  -> digest set, tag empty
///     "a/b:1@sha256:.."        -> both set; the digest is what gets pulled
struct ImageRef {
  std::string registry;     ///< "docker.io", "ghcr.io", "localhost:5000".
  std::string repository;   ///< "library/nginx".
  std::string tag;          ///< Empty when only a digest was given.
  std::string digest;       ///< "sha256:<64 hex>" or "sha512:<128 hex>", or empty.
  bool tagImplied = false;  ///< Neither tag nor digest was written: tag is "latest" by default.

  /// registry/repository
  std::string name() const;
  /// The normalized reference: name[:tag][@digest], e.g. "docker.io/library/nginx:latest".
  std::string str() const;

  /// Same image to pull: "nginx" and "nginx:latest" are equal (tagImplied is how it was written,
  /// not what is pulled), so facts keyed by ImageRef are fetched once for both.
  bool operator==(const ImageRef& other) const {
    return registry == other.registry && repository == other.repository && tag == other.tag &&
           digest == other.digest;
  }
  bool operator<(const ImageRef& other) const {
    return std::tie(registry, repository, tag, digest) <
           std::tie(other.registry, other.repository, other.tag, other.digest);
  }
};

class InvalidReference : public Error {
 public:
  using Error::Error;
};

/// Parses and normalizes `reference`. Throws InvalidReference with a message that quotes the
/// input and says what is wrong (uppercase repository, bad tag, bad digest or a digest algorithm
/// other than sha256 and sha512, empty, too long).
ImageRef parseImageRef(std::string_view reference);

}  // namespace imagegate::image
