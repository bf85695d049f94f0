#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "registry/auth.h"
#include "registry/http_client.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "registry/registry_config.h"

// The Distribution API v2 client (docker-registry, Docker Hub, GHCR, Harbor, ...).
namespace imagegate::registry {

struct DistributionRegistryOptions {
  RegistryConfig config;
  DockerConfig credentials;
  /// Null: an HttpClient built from `config` (timeouts, CA files).
  HttpTransportPtr transport;
  /// How Retry-After waits are spent; tests replace it to avoid real sleeps.
  std::function<void(std::chrono::milliseconds)> sleep;
};

/// Fetches facts over the Distribution API v2:
///  - GET /v2/<name>/manifests/<tag|digest> with an Accept of all four manifest types; the body's
///    digest must equal the pinned digest, or the Docker-Content-Digest header when unpinned;
///  - an index resolves to the manifest for the platform, fetched by digest and verified;
///  - GET /v2/<name>/blobs/<config digest>, hashed while it streams, size and digest verified;
///  - redirects (301/302/303/307/308, at most 5) drop Authorization when the origin changes and
///    never downgrade https to http unless the target host is configured insecure;
///  - 401 → the challenge is answered once: Bearer via the token service (GET with service and
///    scope=repository:<name>:pull, Basic auth when credentials exist, or a refresh-token POST
///    for an identitytoken), tokens cached until shortly before expiry; Basic with credentials;
///  - 429/503 wait for Retry-After (seconds) when that is at most a few seconds and leaves time
///    for the retried request before the deadline; otherwise they fail at once, saying so.
/// Credentials are never sent over plain HTTP unless that host is configured `insecure: true`,
/// and never appear in messages: every FetchError is scrubbed of them. Thread-safe.
class DistributionRegistry : public Registry {
 public:
  explicit DistributionRegistry(DistributionRegistryOptions options);

  // Registry
  image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform& platform,
                               Deadline deadline) override;
  void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob, const BlobSink& sink,
                 Deadline deadline) override;

  /// The API host for a registry as written in image references: docker.io is served from
  /// registry-1.docker.io.
  static std::string apiHost(const std::string& registry);

 private:
  struct Call;
  struct Manifest;

  /// A call for `ref` within `deadline`, its credentials and API base URL set up.
  Call startCall(const image::ImageRef& ref, Deadline deadline) const;

  /// The image manifest for `platform`, through the index if there is one; sets
  /// facts.manifestDigest and, for an index, facts.platform.
  ImageManifest resolveManifest(Call& call, const image::Platform& platform,
                                image::ImageFacts& facts);
  Manifest fetchManifest(Call& call, const std::string& reference,
                         const std::string& expectedDigest);
  image::ImageConfig fetchConfig(Call& call, const image::Descriptor& config);
  HttpResponse get(Call& call, const std::string& path, const std::string& accept,
                   const ReadOptions& read);
  std::string authorizationFor(const Call& call) const;
  void answerChallenge(Call& call, const HttpResponse& response, const std::string& sent);
  void fetchToken(Call& call, const Challenge& challenge);
  bool insecureHost(const std::string& authority) const;
  /// Records a credential the call's messages must never show.
  static void addSecret(Call& call, const std::string& secret);
  /// How long to sleep for a 429/503's Retry-After of `seconds`. Throws the status as a
  /// FetchError saying why instead when the wait, plus time for the retried request, does not fit
  /// in the deadline, or is longer than one fetch ever sleeps.
  static std::chrono::milliseconds honouredWait(const Call& call, const HttpResponse& response,
                                                std::uint64_t seconds);
  /// The error as callers see it: naming image and registry host, scrubbed of credentials.
  static FetchError failure(const Call& call, FetchError::Kind kind, const std::string& what);

  DistributionRegistryOptions options_;
  HttpTransportPtr transport_;
  TokenCache tokens_;
  mutable std::mutex hintsMutex_;
  std::map<std::string, Challenge> hints_;  ///< Last challenge per API host, to authorise upfront.
};

/// Builds a DistributionRegistry from a registry config, loading its docker config file.
/// Throws Error when that file cannot be read or parsed.
RegistryPtr makeDistributionRegistry(const RegistryConfig& config);

}  // namespace imagegate::registry
