#include "registry/url.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "common/text.h"

namespace imagegate::registry {
namespace {

bool isPort(std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return false;
  }
  const int port = std::stoi(std::string(text));
  return port > 0 && port <= 65535;
}

bool isHostChar(unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_'; }

// Splits "host[:port]" or "[v6][:port]"; rejects empty hosts and characters that would let a
// hostile Location smuggle userinfo or a second host.
bool splitAuthority(std::string_view authority, std::string& host, std::string& port) {
  std::string_view hostPart = authority;
  std::string_view portPart;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    hostPart = authority.substr(0, close + 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return false;
      }
      portPart = rest.substr(1);
    }
    const std::string_view inner = hostPart.substr(1, hostPart.size() - 2);
    if (inner.empty() || !std::all_of(inner.begin(), inner.end(), [](unsigned char c) {
          return std::isxdigit(c) || c == ':' || c == '.';
        })) {
      return false;
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      hostPart = authority.substr(0, colon);
      portPart = authority.substr(colon + 1);
    }
    if (hostPart.empty() || !std::all_of(hostPart.begin(), hostPart.end(), isHostChar)) {
      return false;
    }
  }
  if (!portPart.empty() && !isPort(portPart)) {
    return false;
  }
  host = asciiLower(hostPart);
  port = std::string(portPart);
  return true;
}

bool hasControlOrSpace(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

std::string defaultPort(std::string_view scheme) { return scheme == "https" ? "443" : "80"; }

}  // namespace

std::string Url::authority() const {
  if (port == defaultPort(scheme)) {
    return host;
  }
  return host + ":" + port;
}

std::string Url::bareHost() const {
  if (host.starts_with('[') && host.ends_with(']')) {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

std::string Url::str() const { return scheme + "://" + authority() + target; }

std::string Url::origin() const { return scheme + "://" + authority(); }

std::optional<Url> parseUrl(std::string_view text) {
  if (text.size() > 8192 || hasControlOrSpace(text)) {
    return std::nullopt;
  }
  const auto schemeEnd = text.find("://");
  if (schemeEnd == std::string_view::npos) {
    return std::nullopt;
  }
  Url url;
  url.scheme = asciiLower(text.substr(0, schemeEnd));
  if (url.scheme != "http" && url.scheme != "https") {
    return std::nullopt;
  }
  const std::string_view rest = text.substr(schemeEnd + 3);
  const auto pathStart = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, pathStart);
  if (authority.find('@') != std::string_view::npos ||
      !splitAuthority(authority, url.host, url.port)) {
    return std::nullopt;
  }
  if (url.port.empty()) {
    url.port = defaultPort(url.scheme);
  }
  std::string_view target = pathStart == std::string_view::npos ? "" : rest.substr(pathStart);
  target = target.substr(0, target.find('#'));
  url.target = target.empty() ? "/" : std::string(target);
  if (url.target[0] == '?') {
    url.target.insert(0, "/");
  }
  return url;
}

std::optional<Url> resolveLocation(const Url& base, std::string_view location) {
  if (location.empty() || hasControlOrSpace(location)) {
    return std::nullopt;
  }
  if (location.find("://") != std::string_view::npos) {
    return parseUrl(location);
  }
  if (location.starts_with("//")) {
    return parseUrl(base.scheme + ":" + std::string(location));
  }
  Url resolved = base;
  if (location.starts_with('/')) {
    resolved.target = std::string(location.substr(0, location.find('#')));
    return resolved;
  }
  // A relative path replaces the last segment of the base path (RFC 3986 §5.2.3, without
  // dot-segment removal: registries never send those).
  const std::string basePath = base.target.substr(0, base.target.find('?'));
  resolved.target = basePath.substr(0, basePath.rfind('/') + 1) +
                    std::string(location.substr(0, location.find('#')));
  return resolved;
}

std::string percentEncode(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~') {
      encoded.push_back(c);
    } else {
      encoded.push_back('%');
      encoded.push_back(kDigits[byte >> 4]);
      encoded.push_back(kDigits[byte & 0x0f]);
    }
  }
  return encoded;
}

void addQueryParameter(Url& url, std::string_view name, std::string_view value) {
  url.target += url.target.find('?') == std::string::npos ? '?' : '&';
  url.target += percentEncode(name);
  url.target += '=';
  url.target += percentEncode(value);
}

}  // namespace imagegate::registry
