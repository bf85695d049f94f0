#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/deadline.h"

// Pure pieces of registry authentication: WWW-Authenticate challenges, token-service responses,
// a token cache, and credentials from a Docker config.json. Nothing here does I/O except
// DockerConfig::load, which reads one file.
namespace imagegate::registry {

/// One challenge from a WWW-Authenticate header (RFC 7235).
struct Challenge {
  std::string scheme;  ///< Lowercased: "bearer", "basic", or whatever the server sent.
  std::map<std::string, std::string> params;  ///< Names lowercased, values unquoted.

  std::string param(const std::string& name) const;
  bool isBearer() const { return scheme == "bearer"; }
  bool isBasic() const { return scheme == "basic"; }
};

/// Parses every challenge in a WWW-Authenticate header value, e.g.
/// `Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`.
/// Quoted values may contain commas and backslash escapes. Throws Error (without echoing more
/// than a short prefix of the header) on malformed input or a header over 8 KiB.
std::vector<Challenge> parseWwwAuthenticate(std::string_view header);

/// The challenge to answer: the first Bearer, else the first Basic, else nullopt.
std::optional<Challenge> preferredChallenge(const std::vector<Challenge>& challenges);

/// A token service's answer (Docker token spec / OAuth2).
struct TokenResponse {
  std::string token;                   ///< `token`, or `access_token` when `token` is absent.
  std::chrono::seconds expiresIn{60};  ///< `expires_in`; 60 s when absent, as the spec says.
};

/// Parses a token response body. Throws Error when it is not JSON, has no token, or has fields of
/// the wrong type.
TokenResponse parseTokenResponse(std::string_view body);

/// Bearer tokens by (realm, service, scope), valid until shortly before they expire. Thread-safe.
/// Times are passed in so tests need no clock.
class TokenCache {
 public:
  explicit TokenCache(std::size_t capacity = 256) : capacity_(capacity) {}

  std::optional<std::string> get(const std::string& realm, const std::string& service,
                                 const std::string& scope, SteadyClock::time_point now) const;
  void put(const std::string& realm, const std::string& service, const std::string& scope,
           const TokenResponse& token, SteadyClock::time_point now);
  /// Forgets a token the registry refused, so the next request fetches a fresh one.
  void erase(const std::string& realm, const std::string& service, const std::string& scope);
  std::size_t size() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  struct Entry {
    std::string token;
    SteadyClock::time_point expires;
  };
  void evictLocked(SteadyClock::time_point now);

  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::map<Key, Entry> entries_;
};

/// Credentials for one registry.
struct Credentials {
  std::string username;
  std::string password;
  /// An OAuth2 refresh token (`identitytoken`): exchanged at a Bearer realm with a POST form
  /// (grant_type=refresh_token), as Docker does.
  std::string identityToken;

  bool empty() const { return username.empty() && password.empty() && identityToken.empty(); }
};

/// Credentials from a Docker config.json. Supported per `auths` entry: `auth` (base64 of
/// user:password), or `username` + `password`, and `identitytoken`. Keys may be "host[:port]",
/// "https://host/", "https://index.docker.io/v1/" and so on; docker.io, index.docker.io and
/// registry-1.docker.io are the same registry. `credsStore` and `credHelpers` need helper
/// programs and are not supported (ignored, like every other field).
class DockerConfig {
 public:
  DockerConfig() = default;

  /// Throws Error naming the offending entry (never its secret) on malformed input.
  static DockerConfig parse(std::string_view json);
  /// Reads and parses a file; throws Error naming the path.
  static DockerConfig load(const std::string& path);

  /// The credentials for a registry host as written in image references ("docker.io",
  /// "registry.internal:5000"), or nullopt.
  std::optional<Credentials> find(std::string_view registryHost) const;
  std::size_t size() const { return byHost_.size(); }

 private:
  std::map<std::string, Credentials> byHost_;
};

/// The canonical form of a config.json key or registry host: scheme and path removed, lowercase,
/// Docker Hub's aliases folded to "docker.io".
std::string normalizeRegistryHost(std::string_view key);

/// Standard base64 (with padding) through OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock.
std::string base64Encode(std::string_view data);
/// Returns nullopt for anything that is not canonical padded base64.
std::optional<std::string> base64Decode(std::string_view text);

/// "Basic <base64(user:password)>".
std::string basicAuthorization(const Credentials& credentials);

}  // namespace imagegate::registry
