#include "server/server.h"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <csignal>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "server/listener.h"
#include "server/session.h"
#include "server/tls_context.h"

// The server's lifecycle: wiring the routes, running the I/O threads, and the drain sequence
// after SIGTERM.
namespace imagegate::server {
namespace {

namespace net = boost::asio;
using ErrorCode = boost::system::error_code;
using Millis = std::chrono::milliseconds;

constexpr Millis kShutdownPollInterval{20};
// Each connection costs ~160 KB while it handshakes or waits for its first request (OpenSSL's
// and Asio's TLS buffers, measured by bench/attack.sh), so more slots mostly means more memory
// an attacker can make us hold; eviction, not slot count, is what keeps clients served.
constexpr std::size_t kMaxDefaultConnections = 1024;
constexpr Millis kTrimInterval{5000};

unsigned threadCount(unsigned requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

/// The options with every derived default filled in.
ServerOptions resolve(ServerOptions options) {
  const std::size_t fileLimit = raiseFileLimit();
  const std::size_t fitting = connectionLimitFor(fileLimit);
  if (options.maxConnections == 0) {
    options.maxConnections = fitting;
  } else if (options.maxConnections > fitting) {
    log::warn("--max-connections is more than the file descriptor limit allows; lowering it",
              {{"requested", options.maxConnections},
               {"fileLimit", fileLimit},
               {"maxConnections", fitting}});
    options.maxConnections = fitting;
  }
  options.maxReviewTimeout = std::min(options.maxReviewTimeout, kMaxReviewBudget);
  return options;
}

}  // namespace

std::size_t reservedDescriptors(std::size_t fileLimit) {
  return std::clamp<std::size_t>(fileLimit / 4, 16, 256);
}

std::size_t connectionLimitFor(std::size_t fileLimit) {
  const std::size_t reserve = reservedDescriptors(fileLimit);
  if (fileLimit <= reserve) return 1;
  return std::min(kMaxDefaultConnections, fileLimit - reserve);
}

std::size_t raiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return kMaxDefaultConnections * 4;
  return static_cast<std::size_t>(limit.rlim_cur);
}

/// One io_context per I/O thread, each run by its thread alone (concurrency hint 1): a connection
/// stays on one thread, so requests are served without locking a shared scheduler or waking the
/// other thread.
std::vector<std::unique_ptr<net::io_context>> makeContexts(unsigned threads) {
  std::vector<std::unique_ptr<net::io_context>> contexts;
  for (unsigned i = 0; i < threads; ++i) contexts.push_back(std::make_unique<net::io_context>(1));
  return contexts;
}

std::vector<net::io_context*> pointersTo(
    const std::vector<std::unique_ptr<net::io_context>>& contexts) {
  std::vector<net::io_context*> pointers;
  for (const auto& context : contexts) pointers.push_back(context.get());
  return pointers;
}

class Server::Impl {
 public:
  Impl(ServerOptions options, ReviewHandler handler)
      : contexts_(makeContexts(threadCount(options.threads))),
        controlContext_(*contexts_.front()),
        state_(std::make_shared<ServerState>(resolve(std::move(options)))),
        control_(net::make_strand(controlContext_)),
        signals_(control_),
        timer_(control_),
        trimTimer_(control_) {
    state_->serving =
        std::make_shared<ServingTls>(state_->options.certFile, state_->options.keyFile);
    state_->tls = state_->serving->context();
    state_->handler = std::move(handler);
    addRoutes();
    net::ip::tcp::acceptor acceptor = bindAcceptor(controlContext_, state_->options);
    port_ = acceptor.local_endpoint().port();
    listener_ = std::make_shared<Listener>(pointersTo(contexts_), std::move(acceptor), state_);
  }

  std::uint16_t port() const { return port_; }

  void run() {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    waitForSignal();
    scheduleTrim();
    listener_->start();
    const ServerOptions& options = state_->options;
    const auto threads = static_cast<unsigned>(contexts_.size());
    log::info("imagegate listening", {{"address", options.address},
                                      {"port", port_},
                                      {"threads", threads},
                                      {"maxBodyBytes", options.maxBodyBytes},
                                      {"maxBodyBytesInFlight", options.maxBodyBytesInFlight},
                                      {"maxConnections", options.maxConnections}});
    // A thread whose connections have all closed waits for new ones instead of returning.
    std::vector<net::executor_work_guard<net::io_context::executor_type>> keepRunning;
    for (const auto& context : contexts_) keepRunning.emplace_back(context->get_executor());
    std::vector<std::thread> workers;
    workers.reserve(threads - 1);
    for (unsigned i = 1; i < threads; ++i) {
      workers.emplace_back([context = contexts_[i].get()] { context->run(); });
    }
    controlContext_.run();
    for (auto& worker : workers) worker.join();
    log::info("imagegate stopped");
  }

  void stop() {
    net::post(control_, [this] { beginStop("stop requested"); });
  }

  ServingTls& serving() { return *state_->serving; }

 private:
  void addRoutes() {
    RouteTable& routes = state_->routes;
    routes.addReview("/validate");
    routes.addGet("/healthz", [] { return textReply(200, "ok"); });
    routes.addGet("/readyz", [state = state_.get()] {
      if (state->draining) return textReply(503, "draining");
      // What is loaded, for whoever checks that a reload was picked up (probes read the status).
      std::string body = "ok\ncertificateNotAfter: " + state->serving->notAfter();
      if (state->options.readyDetails) body += "\n" + state->options.readyDetails();
      return textReply(200, std::move(body));
    });
    for (const auto& [path, answer] : state_->options.extraGets) {
      routes.addGet(path, [answer] { return Reply{answer(), "", false}; });
    }
  }

  // glibc keeps freed memory in its arenas: after a flood of connections or a burst of large
  // bodies ends, the process would stay at its peak RSS. Every few seconds, give back what is
  // free; with little free memory this costs microseconds.
  void scheduleTrim() {
    trimTimer_.expires_after(kTrimInterval);
    trimTimer_.async_wait([this](ErrorCode ec) {
      if (ec || stopping_) return;
      malloc_trim(0);
      scheduleTrim();
    });
  }

  void waitForSignal() {
    signals_.async_wait([this](ErrorCode ec, int signal) {
      if (ec) return;
      if (stopping_) {
        log::warn("second signal during shutdown; stopping now", {{"signal", signal}});
        stopThreads();
        return;
      }
      beginStop(signal == SIGTERM ? "SIGTERM" : "SIGINT");
      waitForSignal();
    });
  }

  // Kubernetes removes the pod from the Service endpoints only some time after SIGTERM, so
  // requests keep arriving for a while: keep serving (readyz 503) before closing the acceptor.
  void beginStop(const std::string& reason) {
    if (stopping_) return;
    stopping_ = true;
    state_->draining = true;
    log::info("shutting down: draining",
              {{"reason", reason}, {"drainPeriodMs", state_->options.drainPeriod.count()}});
    timer_.expires_after(state_->options.drainPeriod);
    timer_.async_wait([this](ErrorCode ec) {
      if (!ec) stopAccepting();
    });
  }

  void stopAccepting() {
    state_->closing = true;
    listener_->close();
    closeIdleSessions(*state_);
    log::info("stopped accepting; waiting for open connections",
              {{"connections", state_->openSessions.load()},
               {"shutdownTimeoutMs", state_->options.shutdownTimeout.count()}});
    shutdownDeadline_ = SteadyClock::now() + state_->options.shutdownTimeout;
    waitForConnections();
  }

  void waitForConnections() {
    const std::size_t open = state_->openSessions.load();
    if (open == 0) {
      stopThreads();
      return;
    }
    if (SteadyClock::now() >= shutdownDeadline_) {
      log::warn("shutdown timeout: dropping open connections", {{"connections", open}});
      stopThreads();
      return;
    }
    timer_.expires_after(kShutdownPollInterval);
    timer_.async_wait([this](ErrorCode ec) {
      if (!ec) waitForConnections();
    });
  }

  void stopThreads() {
    for (const auto& context : contexts_) context->stop();
  }

  std::vector<std::unique_ptr<net::io_context>> contexts_;
  net::io_context& controlContext_;  ///< The first thread's: signals, timers, the acceptor.
  std::shared_ptr<ServerState> state_;
  net::strand<net::io_context::executor_type> control_;
  net::signal_set signals_;
  net::steady_timer timer_;
  net::steady_timer trimTimer_;
  std::shared_ptr<Listener> listener_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;  ///< Only touched on control_.
  SteadyClock::time_point shutdownDeadline_;
};

Server::Server(ServerOptions options, ReviewHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

std::uint16_t Server::port() const { return impl_->port(); }

void Server::run() { impl_->run(); }

void Server::stop() { impl_->stop(); }

void Server::reloadCertificate(const std::string& certFile, const std::string& keyFile) {
  impl_->serving().reload(certFile, keyFile);
}

std::string Server::certificateNotAfter() const { return impl_->serving().notAfter(); }

}  // namespace imagegate::server
