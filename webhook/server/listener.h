#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "server/session.h"

// Accepts connections on its own strand and gives each a Session on a fresh strand, within the
// connection table's limits (server-internal).
namespace imagegate::server {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor&& acceptor,
           std::shared_ptr<ServerState> state);

  void start();
  /// From any thread: stops accepting.
  void close();

 private:
  void accept();
  void onAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  void admit(boost::asio::ip::tcp::socket socket);
  void logPressure();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retryTimer_;
  std::shared_ptr<ServerState> state_;
  std::size_t refused_ = 0;
  std::size_t evictionsLogged_ = 0;
  SteadyClock::time_point lastPressureLog_{};
};

/// Binds and listens; throws imagegate::Error naming the address when it cannot.
boost::asio::ip::tcp::acceptor bindAcceptor(boost::asio::io_context& ioc,
                                            const ServerOptions& options);

}  // namespace imagegate::server
