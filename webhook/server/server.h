#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "common/http_reply.h"

// The HTTPS front door: Boost.Beast over OpenSSL (TLS 1.2+), one strand per connection,
// keep-alive, timeouts, bounded bodies and connections, graceful drain. Knows nothing about
// policies: it hands /validate bodies to a ReviewHandler.
namespace imagegate::server {

/// Delivers the answer to one review. Callable from any thread; only the first call counts.
using ReviewResponder = std::function<void(HttpReply)>;

/// Answers a POST /validate body before `deadline` (from `?timeout=`, else the default) by
/// calling `respond`: right away on the calling I/O thread when it can, or later from its own
/// thread when it has to wait (on registries), so I/O threads never block. `body` is valid until
/// `respond` is called.
using ReviewHandler =
    std::function<void(std::string_view body, Deadline deadline, ReviewResponder respond)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8443;  ///< 0 picks a free port; see Server::port().
  std::string certFile;
  std::string keyFile;
  std::size_t maxBodyBytes = 4 * 1024 * 1024;
  std::size_t maxConnections = 1024;
  unsigned threads = 0;                                    ///< 0: one per core.
  std::chrono::milliseconds readTimeout{10'000};           ///< Handshake, headers and body.
  std::chrono::milliseconds defaultReviewTimeout{10'000};  ///< When no ?timeout= is given.
  std::chrono::milliseconds drainPeriod{0};  ///< After SIGTERM: /readyz 503, still serving.
  std::chrono::milliseconds shutdownTimeout{15'000};  ///< Then: wait this long for in-flight work.
};

class Server {
 public:
  /// Loads the certificate and key and binds the listening socket; throws imagegate::Error with
  /// an actionable message when either fails.
  Server(ServerOptions options, ReviewHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (useful with port 0).
  std::uint16_t port() const;

  /// Serves until SIGTERM/SIGINT or stop(), then drains and returns.
  void run();

  /// Starts a graceful stop from any thread.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imagegate::server
