#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/deadline.h"
#include "registry/url.h"

// The only part of the registry client that touches sockets. Synchronous per call: each call
// runs its connection's own io_context on the calling (worker) thread, so callers need no event
// loop and can enforce their deadline with plain code.
namespace imagegate::registry {

struct HttpRequest {
  std::string method = "GET";
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  ///< Names lowercased.
  std::string body;  ///< Empty when a 2xx body went to ReadOptions::sink.

  /// The first value of `name` (lowercase), or "".
  std::string header(std::string_view name) const;
  std::vector<std::string> headerValues(std::string_view name) const;
};

/// Receives a 2xx response body chunk by chunk, so large blobs are hashed as they stream in.
/// May throw; the connection is then closed and the exception propagates out of send().
using BodySink = std::function<void(std::string_view chunk)>;

struct ReadOptions {
  /// A larger 2xx body fails with FetchError(kInvalidContent). Non-2xx bodies are cut at 64 KiB.
  std::size_t bodyLimit = 4 * 1024 * 1024;
  /// When set, a 2xx body is passed here instead of being kept in HttpResponse::body.
  BodySink sink;
};

/// Sends one request and reads the response. Throws FetchError: kUnreachable (refused, reset,
/// DNS), kTlsFailure, kTimeout (deadline passed in any phase), kInvalidContent (body over the
/// limit, a head over 64 KiB, or a chunk header or trailer too long to buffer). HTTP error statuses
/// are returned, not thrown. The caller owns redirects and auth.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual HttpResponse send(const HttpRequest& request, Deadline deadline,
                            const ReadOptions& options) = 0;
};
using HttpTransportPtr = std::shared_ptr<HttpTransport>;

struct HttpClientOptions {
  std::chrono::milliseconds connectTimeout{2000};
  /// Extra CA bundles by authority ("host[:port]" as in Url::authority()); the system CAs are
  /// always trusted too.
  std::map<std::string, std::string> caFiles;
  std::size_t maxIdlePerOrigin = 4;
  std::size_t maxIdleTotal = 32;
  /// Idle connections older than this are closed rather than reused; servers drop them anyway.
  std::chrono::seconds maxIdleTime{30};
  std::string userAgent = "imagegate/0.1";
};

/// HTTP/1.1 over TCP or TLS (Boost.Beast + OpenSSL) with a small keep-alive pool per
/// (scheme, host, port). TLS verifies the chain against the system CAs plus the host's CA file,
/// checks the host name (IP SANs included) and sends SNI for names. Thread-safe.
class HttpClient : public HttpTransport {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // HttpTransport
  HttpResponse send(const HttpRequest& request, Deadline deadline,
                    const ReadOptions& options) override;

  /// Connections currently idle in the pool (for tests).
  std::size_t idleConnections() const;

 private:
  struct Connection;
  struct TlsContexts;
  using ConnectionPtr = std::unique_ptr<Connection>;

  ConnectionPtr connect(const Url& url, Deadline deadline);
  ConnectionPtr takeIdle(const std::string& key);
  void putIdle(const std::string& key, ConnectionPtr connection);
  std::string caFileFor(const Url& url) const;

  HttpClientOptions options_;
  std::unique_ptr<TlsContexts> tls_;
  mutable std::mutex poolMutex_;
  std::map<std::string, std::vector<ConnectionPtr>> idle_;
};

}  // namespace imagegate::registry
