#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/deadline.h"
#include "common/http_reply.h"

// The HTTPS front door: Boost.Beast over OpenSSL (TLS 1.2+), each connection on one I/O thread,
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

/// The API server's largest webhook timeoutSeconds: no review may ask for longer.
inline constexpr std::chrono::milliseconds kMaxReviewBudget{30'000};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8443;  ///< 0 picks a free port; see Server::port().
  std::string certFile;
  std::string keyFile;
  /// The API server caps request bodies at 3 MiB and etcd stores objects of up to 1.5 MiB, so a
  /// review (object plus, on UPDATE, oldObject) fits in 3 MiB unless its JSON is unusually fat.
  std::size_t maxBodyBytes = 3 * 1024 * 1024;
  /// Request bodies being received on all connections together; the oldest unfinished upload
  /// is dropped to make room.
  std::size_t maxBodyBytesInFlight = 64 * 1024 * 1024;
  /// 0: derived from the file descriptor limit (see connectionLimitFor).
  std::size_t maxConnections = 0;
  /// Connections from one client address that have not completed a request yet.
  std::size_t maxPendingPerAddress = 256;
  unsigned threads = 0;                                  ///< 0: one per core.
  std::chrono::milliseconds firstRequestTimeout{5'000};  ///< Accept to the end of request one.
  std::chrono::milliseconds idleTimeout{60'000};         ///< Keep-alive wait for the next request.
  std::chrono::milliseconds readTimeout{10'000};         ///< A later request's body; each write.
  std::chrono::milliseconds defaultReviewTimeout{10'000};  ///< When no ?timeout= is given.
  /// The most a review may take, whatever its ?timeout= asks (at most 30 s, the API server's
  /// largest timeoutSeconds).
  std::chrono::milliseconds maxReviewTimeout{30'000};
  std::chrono::milliseconds drainPeriod{0};  ///< After SIGTERM: /readyz 503, still serving.
  std::chrono::milliseconds shutdownTimeout{15'000};  ///< Then: wait this long for in-flight work.
  /// Lines /readyz adds after "ok" and the certificate's notAfter (e.g. the policy revision);
  /// called on an I/O thread, so it must be quick and thread-safe. Optional.
  std::function<std::string()> readyDetails;
  /// GET routes besides /healthz and /readyz, such as /metrics: path and what answers it (on an
  /// I/O thread, so it must be quick).
  std::vector<std::pair<std::string, std::function<HttpReply()>>> extraGets;
};

/// File descriptors kept back from connections for registry connections, policy and
/// certificate files and the process itself.
std::size_t reservedDescriptors(std::size_t fileLimit);
/// The default connection limit for a file descriptor limit: what is left after the reserve,
/// and at most 1024.
std::size_t connectionLimitFor(std::size_t fileLimit);
/// Raises the soft RLIMIT_NOFILE to the hard limit (containers often start at 1024 soft) and
/// returns the soft limit now in force.
std::size_t raiseFileLimit();

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

  /// Loads and checks a new certificate and key; new TLS handshakes use them from now on,
  /// open connections keep theirs. Throws imagegate::Error, keeping the current pair, when they
  /// cannot be read or do not match. Thread-safe.
  void reloadCertificate(const std::string& certFile, const std::string& keyFile);
  /// The serving certificate's notAfter, ISO 8601 UTC.
  std::string certificateNotAfter() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imagegate::server
