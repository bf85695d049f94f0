#pragma once

#include <optional>
#include <string>
#include <string_view>

// Absolute http(s) URLs as the registry protocol uses them: token realms and redirect targets.
namespace imagegate::registry {

struct Url {
  std::string scheme;  ///< "http" or "https".
  std::string host;    ///< Lowercased; IPv6 literals keep their brackets.
  std::string port;    ///< Always set; "443"/"80" when the URL had none.
  std::string target;  ///< Path and query, at least "/".

  /// host, plus ":port" when it is not the scheme's default: what goes into the Host header.
  std::string authority() const;
  /// The host without IPv6 brackets, for name resolution and certificate checks.
  std::string bareHost() const;
  std::string str() const;
  /// scheme://authority, for messages: never the path or query, which may carry tokens.
  std::string origin() const;
};

/// Parses an absolute http:// or https:// URL. No userinfo ("user:pass@") is accepted, so
/// credentials can never hide in a URL. Returns nullopt for anything else.
std::optional<Url> parseUrl(std::string_view text);

/// Resolves a Location header against the URL it came from: absolute URLs, "//host/path",
/// "/path" and "relative" forms. Returns nullopt when the result is not a valid http(s) URL.
std::optional<Url> resolveLocation(const Url& base, std::string_view location);

/// Percent-encodes everything but RFC 3986 unreserved characters, for query values.
std::string percentEncode(std::string_view text);

/// Appends `name=value` (value percent-encoded) to the target's query.
void addQueryParameter(Url& url, std::string_view name, std::string_view value);

}  // namespace imagegate::registry
