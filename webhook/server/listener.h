#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "server/session.h"

// Accepts connections on its own strand and gives each a Session on one of the I/O threads'
// io_contexts, in turn, within the connection table's limits (server-internal).
namespace imagegate::server {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  /// `sessionContexts`: one per I/O thread, each run by that thread alone; they outlive the
  /// listener.
  Listener(std::vector<boost::asio::io_context*> sessionContexts,
           boost::asio::ip::tcp::acceptor&& acceptor, std::shared_ptr<ServerState> state);

  void start();
  /// From any thread: stops accepting.
  void close();

 private:
  void accept();
  void acceptWhenRoom();
  void onAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  void admit(boost::asio::ip::tcp::socket socket);
  void logPressure();

  std::vector<boost::asio::io_context*> sessionContexts_;
  std::size_t nextContext_ = 0;
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
