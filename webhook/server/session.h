#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/connection_table.h"
#include "server/routes.h"
#include "server/server.h"
#include "server/tls_context.h"

// One TLS connection (server-internal): handshake, then requests one at a time (keep-alive),
// all on the one I/O thread the connection was given.
namespace imagegate::server {

/// What the listener, the sessions and the shutdown sequence share. Sessions hold it by
/// shared_ptr because the io_context may destroy them (with their pending handlers) last.
class Session;
using SessionPtr = std::shared_ptr<Session>;

struct ServerState {
  explicit ServerState(ServerOptions resolved)
      : options(std::move(resolved)),
        connections(ConnectionLimits{options.maxConnections, options.maxPendingPerAddress,
                                     options.maxBodyBytesInFlight}) {}

  const ServerOptions options;
  ReviewHandler handler;
  RouteTable routes;
  std::shared_ptr<ServingTls> serving;             ///< Owns the certificate handshakes get.
  std::shared_ptr<boost::asio::ssl::context> tls;  ///< serving->context().
  ConnectionTable connections;
  std::atomic<bool> draining{false};  ///< /readyz says 503; responses close their connection.
  std::atomic<bool> closing{false};   ///< Acceptor closed: finish in-flight requests only.
  std::atomic<std::size_t> openSessions{0};
  std::mutex sessionsMutex;
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions;  ///< For shutdown.
};

/// Creates a session for an accepted socket and registers it in the connection table; null when
/// the table has no room (the socket is then closed).
SessionPtr startSession(boost::asio::ip::tcp::socket&& socket,
                        const std::shared_ptr<ServerState>& state);

/// At shutdown: closes every session that is between requests; one in the middle of a request
/// finishes it first (and then closes).
void closeIdleSessions(ServerState& state);

}  // namespace imagegate::server
