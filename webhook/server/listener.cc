#include "server/listener.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/error.h"
#include "common/log.h"

namespace imagegate::server {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using ErrorCode = boost::system::error_code;

constexpr std::chrono::milliseconds kPressureLogInterval{1000};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Sessions evicted but not closed yet that accepting may run ahead of (a new connection is what
// evicts, so accepting cannot wait for all of them); well inside reservedDescriptors().
constexpr std::size_t kEvictionsInFlight = 4;
constexpr std::chrono::milliseconds kRoomPollInterval{1};

}  // namespace

Listener::Listener(std::vector<net::io_context*> sessionContexts, tcp::acceptor&& acceptor,
                   std::shared_ptr<ServerState> state)
    : sessionContexts_(std::move(sessionContexts)),
      acceptor_(std::move(acceptor)),
      retryTimer_(acceptor_.get_executor()),
      state_(std::move(state)) {}

void Listener::start() {
  net::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->accept(); });
}

void Listener::close() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    ErrorCode ignored;
    self->acceptor_.close(ignored);
    self->retryTimer_.cancel();
  });
}

void Listener::accept() {
  // A connection lives on one thread's io_context from accept to close, so its handlers need no
  // strand and a request is read, reviewed and answered without a hand-off between threads.
  net::io_context& context = *sessionContexts_[nextContext_];
  nextContext_ = (nextContext_ + 1) % sessionContexts_.size();
  acceptor_.async_accept(context.get_executor(),
                         [self = shared_from_this()](ErrorCode ec, tcp::socket socket) {
                           self->onAccept(ec, std::move(socket));
                         });
}

void Listener::onAccept(ErrorCode ec, tcp::socket socket) {
  if (!acceptor_.is_open()) return;
  if (ec) {
    // Typically EMFILE: pause instead of spinning on an error that persists.
    log::warn("accept failed", {{"error", ec.message()}});
    retryTimer_.expires_after(kAcceptRetryDelay);
    retryTimer_.async_wait([self = shared_from_this()](ErrorCode timerEc) {
      if (!timerEc && self->acceptor_.is_open()) self->accept();
    });
    return;
  }
  admit(std::move(socket));
  acceptWhenRoom();
}

/// An evicted connection closes on its own I/O thread a moment after the eviction. Waiting for
/// those closes before taking another descriptor keeps the sockets held at most a few over
/// maxConnections however fast clients connect, within the descriptors kept in reserve.
void Listener::acceptWhenRoom() {
  if (state_->openSessions.load() < state_->options.maxConnections + kEvictionsInFlight) {
    accept();
    return;
  }
  retryTimer_.expires_after(kRoomPollInterval);
  retryTimer_.async_wait([self = shared_from_this()](ErrorCode ec) {
    if (!ec && self->acceptor_.is_open()) self->acceptWhenRoom();
  });
}

void Listener::admit(tcp::socket socket) {
  // A response is one small write followed by a wait for the next request: Nagle's algorithm
  // would hold it back until the client's delayed ACK (up to 40 ms on Linux).
  ErrorCode ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (!startSession(std::move(socket), state_)) ++refused_;  // its socket closes with it
  logPressure();
}

/// At most one line a second while connections are being evicted or refused.
void Listener::logPressure() {
  const std::size_t evictions = state_->connections.evictions();
  if (refused_ == 0 && evictions == evictionsLogged_) return;
  const auto now = SteadyClock::now();
  if (now - lastPressureLog_ < kPressureLogInterval) return;
  log::warn(
      "connection limit reached: closed connections that had not completed a request or "
      "were idle",
      {{"maxConnections", state_->options.maxConnections},
       {"maxPendingPerAddress", state_->options.maxPendingPerAddress},
       {"evictedSinceLastLog", evictions - evictionsLogged_},
       {"refusedSinceLastLog", refused_}});
  lastPressureLog_ = now;
  evictionsLogged_ = evictions;
  refused_ = 0;
}

tcp::acceptor bindAcceptor(net::io_context& ioc, const ServerOptions& options) {
  ErrorCode ec;
  const auto address = net::ip::make_address(options.address, ec);
  if (ec) {
    throw Error("invalid listen address '" + options.address + "': " + ec.message());
  }
  const tcp::endpoint endpoint(address, options.port);
  const std::string where = options.address + ":" + std::to_string(options.port);
  tcp::acceptor acceptor(net::make_strand(ioc));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error("cannot listen on " + where + ": " + ec.message());
  }
  return acceptor;
}

}  // namespace imagegate::server
