#include "server/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <csignal>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/error.h"
#include "common/log.h"
#include "server/tls_context.h"

namespace imagegate::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Millis = std::chrono::milliseconds;

// Kubernetes sends a handful of short headers; 16 KiB leaves room for proxies without letting a
// client make us buffer much before the body limit applies.
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
// At shutdown an idle keep-alive client gets this long to answer our close_notify.
constexpr Millis kIdleCloseTimeout{1000};
// After an error reply while the client may still be uploading, we read and discard for a while
// before closing: closing with unread data makes the kernel send RST, which can destroy our reply
// before the client reads it.
constexpr Millis kLingerTimeout{2000};
constexpr std::size_t kMaxLingerBytes = 8 * 1024 * 1024;
constexpr Millis kShutdownPollInterval{20};
constexpr Millis kRejectLogInterval{1000};

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

/// What the router decided; turned into a Beast response by the session.
struct Reply {
  HttpReply http;
  std::string allow;   ///< The Allow header of a 405.
  bool close = false;  ///< The connection cannot carry another request after this one.
};

Reply textReply(unsigned status, std::string message, bool close = false) {
  return Reply{HttpReply{status, "text/plain; charset=utf-8", std::move(message) + "\n"}, "",
               close};
}

struct Target {
  std::string_view path;
  std::string_view query;
};

Target splitTarget(std::string_view target) {
  const std::size_t mark = target.find('?');
  if (mark == std::string_view::npos) return Target{target, {}};
  return Target{target.substr(0, mark), target.substr(mark + 1)};
}

std::optional<std::string_view> queryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

/// The API server appends `?timeout=10s` (the webhook's timeoutSeconds); without a usable one
/// the configured default applies.
Deadline reviewDeadline(std::string_view query, Millis fallback) {
  Millis budget = fallback;
  if (const auto text = queryParam(query, "timeout")) {
    if (const auto parsed = parseGoDuration(*text); parsed && parsed->count() > 0) {
      budget = *parsed;
    }
  }
  return Deadline::after(budget);
}

/// Beast 1.74 speaks boost::string_view; everything else here is std::string_view.
std::string_view sv(beast::string_view text) { return {text.data(), text.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// "application/json", optionally with parameters such as "; charset=utf-8".
bool isJsonContentType(std::string_view value) {
  return iequals(trim(value.substr(0, value.find(';'))), "application/json");
}

/// Checks what can be checked from the header alone, so a doomed upload need not be read.
std::optional<Reply> checkHeader(const http::request_header<>& header) {
  const std::string_view path = splitTarget(sv(header.target())).path;
  if (path == "/validate") {
    if (header.method() != http::verb::post) {
      return Reply{textReply(405, "method not allowed: /validate accepts POST").http, "POST"};
    }
    const auto contentType = header.find(http::field::content_type);
    if (contentType == header.end() || !isJsonContentType(sv(contentType->value()))) {
      return textReply(415,
                       "unsupported media type: /validate needs Content-Type: "
                       "application/json");
    }
    return std::nullopt;
  }
  if (path == "/healthz" || path == "/readyz") {
    if (header.method() != http::verb::get) {
      return Reply{textReply(405, "method not allowed: use GET").http, "GET"};
    }
    return std::nullopt;
  }
  return textReply(404, "not found: imagegate serves POST /validate, GET /healthz, GET /readyz");
}

/// Runs the handler; an exception it throws becomes a 500 and the server keeps serving.
void callHandler(const ReviewHandler& handler, const Request& request, Millis defaultTimeout,
                 const ReviewResponder& respond) {
  const Deadline deadline = reviewDeadline(splitTarget(sv(request.target())).query, defaultTimeout);
  try {
    handler(request.body(), deadline, respond);
  } catch (const std::exception& e) {
    log::error("review handler failed", {{"error", e.what()}});
    respond(textReply(500, std::string("internal error while reviewing: ") + e.what()).http);
  } catch (...) {
    log::error("review handler failed with a non-standard exception");
    respond(textReply(500, "internal error while reviewing").http);
  }
}

/// Reply for a probe whose header passed checkHeader.
Reply probeReply(const Request& request, bool draining) {
  const std::string_view path = splitTarget(sv(request.target())).path;
  if (path == "/healthz") return textReply(200, "ok");
  return draining ? textReply(503, "draining") : textReply(200, "ok");
}

/// How a failed read maps to an HTTP answer; nullopt means the peer is gone or idle, so there is
/// nobody to answer.
std::optional<Reply> replyForReadError(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return textReply(413, "request body too large", true);
  }
  if (ec == http::error::header_limit) {
    return textReply(431, "request header too large", true);
  }
  // Any other parser error means the bytes were not HTTP/1.1 we accept; partial_message only
  // means the client left mid-request, so nobody is listening for an answer.
  if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return textReply(400, "malformed HTTP request: " + ec.message(), true);
  }
  return std::nullopt;
}

bool isNormalClose(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == ssl::error::stream_truncated || ec == beast::error::timeout ||
         ec == net::error::operation_aborted || ec == net::error::connection_reset;
}

class Session;

/// State shared by the listener, the sessions and the shutdown sequence. Sessions hold it by
/// shared_ptr because the io_context may destroy them (with their pending handlers) last.
struct Shared {
  ServerOptions options;
  ReviewHandler handler;
  std::shared_ptr<ssl::context> tls;
  std::atomic<bool> draining{false};  ///< /readyz says 503; responses close their connection.
  std::atomic<bool> closing{false};   ///< Acceptor closed: finish in-flight requests only.
  std::atomic<std::size_t> connections{0};
  std::mutex sessionsMutex;
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions;
};

/// One TLS connection: handshake, then requests one at a time (keep-alive), all on one strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket), *shared->tls), shared_(std::move(shared)) {
    beast::error_code ec;
    const auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  ~Session() {
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMutex);
      shared_->sessions.erase(this);
    }
    shared_->connections.fetch_sub(1);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMutex);
      shared_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::handshake, shared_from_this()));
  }

  /// Shutdown: post this to the strand. A connection waiting for its next request is closed;
  /// one in the middle of a request finishes it first (and then closes, see readRequest).
  void closeIfIdle() {
    if (phase_ == Phase::kIdle && served_ > 0 && buffer_.size() == 0 && !parser_->got_some()) {
      beast::get_lowest_layer(stream_).cancel();
    }
  }

  auto executor() { return stream_.get_executor(); }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kWriting, kClosing };

  void handshake() {
    beast::get_lowest_layer(stream_).expires_after(shared_->options.readTimeout);
    stream_.async_handshake(ssl::stream_base::server,
                            beast::bind_front_handler(&Session::onHandshake, shared_from_this()));
  }

  void onHandshake(beast::error_code ec) {
    if (ec) {
      log::debug("TLS handshake failed", {{"remote", remote_}, {"error", ec.message()}});
      closeSocket();
      return;
    }
    readRequest();
  }

  void readRequest() {
    if (shared_->closing && served_ > 0) {
      shutdownTls(kIdleCloseTimeout);
      return;
    }
    phase_ = Phase::kIdle;
    parser_.emplace();
    parser_->body_limit(shared_->options.maxBodyBytes);
    parser_->header_limit(kHeaderLimit);
    pendingReply_.reset();
    readError_.clear();
    beast::get_lowest_layer(stream_).expires_after(shared_->options.readTimeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::onHeader, shared_from_this()));
  }

  void onHeader(beast::error_code ec, std::size_t) {
    if (ec) {
      onReadError(ec);
      return;
    }
    phase_ = Phase::kReading;
    started_ = SteadyClock::now();
    pendingReply_ = checkHeader(parser_->get());
    const bool expectsContinue = iequals(sv(parser_->get()[http::field::expect]), "100-continue");
    if (pendingReply_ && expectsContinue) {
      // The client waits for our go-ahead before uploading: answer now, skip the body, and close,
      // since the client may still send the body after all.
      pendingReply_->close = true;
      respond(std::move(*pendingReply_));
      return;
    }
    if (expectsContinue) {
      sendContinue();
      return;
    }
    readBody();
  }

  void sendContinue() {
    continue_ = http::response<http::empty_body>(http::status::continue_, parser_->get().version());
    beast::get_lowest_layer(stream_).expires_after(shared_->options.readTimeout);
    http::async_write(stream_, continue_,
                      beast::bind_front_handler(&Session::onContinue, shared_from_this()));
  }

  void onContinue(beast::error_code ec, std::size_t) {
    if (ec) {
      closeSocket();
      return;
    }
    readBody();
  }

  void readBody() {
    beast::get_lowest_layer(stream_).expires_after(shared_->options.readTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::onBody, shared_from_this()));
  }

  void onBody(beast::error_code ec, std::size_t) {
    if (ec) {
      onReadError(ec);
      return;
    }
    if (pendingReply_) {
      respond(std::move(*pendingReply_));
      return;
    }
    if (splitTarget(sv(parser_->get().target())).path == "/validate") {
      review();
      return;
    }
    respond(probeReply(parser_->get(), shared_->draining));
  }

  /// Hands the body to the handler. It answers at once on this strand (the usual case) or later
  /// from another thread; either way the answer is written from this connection's strand, and
  /// nothing reads from the connection or touches the parser until then.
  void review() {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    ReviewResponder responder = [self = shared_from_this(), answered](HttpReply reply) {
      if (answered->exchange(true)) return;  // exactly one answer per request
      net::dispatch(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->respond(Reply{std::move(reply), "", false});
      });
    };
    callHandler(shared_->handler, parser_->get(), shared_->options.defaultReviewTimeout, responder);
  }

  void onReadError(const beast::error_code& ec) {
    if (auto reply = replyForReadError(ec)) {
      readError_ = ec.message();
      respond(std::move(*reply));
      return;
    }
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted) {
      // The client closed cleanly between requests, or shutdown closed an idle connection.
      shutdownTls(kIdleCloseTimeout);
      return;
    }
    if (!isNormalClose(ec)) {
      log::debug("connection read failed", {{"remote", remote_}, {"error", ec.message()}});
    }
    closeSocket();
  }

  void respond(Reply reply) {
    phase_ = Phase::kWriting;
    const bool headerRead = parser_->is_header_done();
    const auto& request = parser_->get();
    // A reply sent before the whole body arrived leaves unread bytes behind: the connection is
    // out of sync and must close.
    const bool bodyUnread = !parser_->is_done();
    const bool keepAlive =
        headerRead && request.keep_alive() && !reply.close && !bodyUnread && !shared_->draining;
    response_ = Response{};
    response_.version(headerRead ? request.version() : 11);
    response_.result(reply.http.status);
    response_.set(http::field::server, "imagegate");
    response_.set(http::field::content_type, reply.http.contentType);
    if (!reply.allow.empty()) response_.set(http::field::allow, reply.allow);
    response_.body() = std::move(reply.http.body);
    response_.keep_alive(keepAlive);
    response_.prepare_payload();
    logRequest(headerRead);
    ++served_;
    beast::get_lowest_layer(stream_).expires_after(shared_->options.readTimeout);
    http::async_write(
        stream_, response_,
        beast::bind_front_handler(&Session::onWrite, shared_from_this(), keepAlive, bodyUnread));
  }

  /// One debug line per request; never the body, which may hold secrets from the object.
  void logRequest(bool headerRead) {
    if (!log::enabled(log::Level::kDebug)) return;
    nlohmann::json fields = {{"remote", remote_}, {"status", response_.result_int()}};
    if (headerRead) {
      const auto& request = parser_->get();
      fields["method"] = std::string(sv(request.method_string()));
      fields["path"] = std::string(splitTarget(sv(request.target())).path);
      fields["requestBytes"] = request.body().size();
      fields["ms"] = std::chrono::duration_cast<Millis>(SteadyClock::now() - started_).count();
    }
    if (!readError_.empty()) fields["error"] = readError_;
    log::debug("request", fields);
  }

  void onWrite(bool keepAlive, bool bodyUnread, beast::error_code ec, std::size_t) {
    if (ec) {
      if (!isNormalClose(ec)) {
        log::debug("write failed", {{"remote", remote_}, {"error", ec.message()}});
      }
      closeSocket();
      return;
    }
    if (keepAlive) {
      readRequest();
    } else if (bodyUnread) {
      lingerUntil_ = SteadyClock::now() + kLingerTimeout;
      discard();
    } else {
      shutdownTls(shared_->closing ? kIdleCloseTimeout : shared_->options.readTimeout);
    }
  }

  void discard() {
    phase_ = Phase::kClosing;
    beast::get_lowest_layer(stream_).expires_at(lingerUntil_);
    stream_.async_read_some(net::buffer(discardBuffer_),
                            beast::bind_front_handler(&Session::onDiscard, shared_from_this()));
  }

  void onDiscard(beast::error_code ec, std::size_t bytes) {
    discarded_ += bytes;
    if (!ec && discarded_ < kMaxLingerBytes) {
      discard();
      return;
    }
    closeSocket();
  }

  void shutdownTls(Millis timeout) {
    phase_ = Phase::kClosing;
    beast::get_lowest_layer(stream_).expires_after(timeout);
    stream_.async_shutdown(beast::bind_front_handler(&Session::onShutdown, shared_from_this()));
  }

  void onShutdown(beast::error_code ec) {
    // stream_truncated: the peer closed without close_notify, which is common and harmless here
    // because every HTTP message we read was length-delimited.
    if (ec && !isNormalClose(ec)) {
      log::debug("TLS shutdown failed", {{"remote", remote_}, {"error", ec.message()}});
    }
    closeSocket();
  }

  void closeSocket() {
    phase_ = Phase::kClosing;
    beast::get_lowest_layer(stream_).close();
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  std::shared_ptr<Shared> shared_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<Reply> pendingReply_;
  std::string readError_;  ///< Why the request could not be read, for the request log line.
  http::response<http::empty_body> continue_;
  Response response_;
  Phase phase_ = Phase::kHandshake;
  std::size_t served_ = 0;
  SteadyClock::time_point started_;
  SteadyClock::time_point lingerUntil_;
  std::size_t discarded_ = 0;
  std::array<char, 16 * 1024> discardBuffer_{};
};

/// Accepts connections on its own strand and gives each a Session on a fresh strand.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor, std::shared_ptr<Shared> shared)
      : ioc_(ioc),
        acceptor_(std::move(acceptor)),
        retryTimer_(acceptor_.get_executor()),
        shared_(std::move(shared)) {}

  void start() {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&Listener::accept, shared_from_this()));
  }

  void close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retryTimer_.cancel();
    });
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::onAccept, shared_from_this()));
  }

  void onAccept(beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Typically EMFILE: pause instead of spinning on an error that persists.
      log::warn("accept failed", {{"error", ec.message()}});
      retryTimer_.expires_after(Millis(100));
      retryTimer_.async_wait([self = shared_from_this()](beast::error_code timerEc) {
        if (!timerEc && self->acceptor_.is_open()) self->accept();
      });
      return;
    }
    admit(std::move(socket));
    accept();
  }

  void admit(tcp::socket socket) {
    if (shared_->connections.load() >= shared_->options.maxConnections) {
      ++rejected_;
      const auto now = SteadyClock::now();
      if (now - lastRejectLog_ >= kRejectLogInterval) {
        log::warn("connection limit reached; closing new connections",
                  {{"maxConnections", shared_->options.maxConnections},
                   {"rejectedSinceLastLog", rejected_}});
        lastRejectLog_ = now;
        rejected_ = 0;
      }
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    // A response is one small write followed by a wait for the next request: Nagle's algorithm
    // would hold it back until the client's delayed ACK (up to 40 ms on Linux).
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    shared_->connections.fetch_add(1);
    std::make_shared<Session>(std::move(socket), shared_)->start();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retryTimer_;
  std::shared_ptr<Shared> shared_;
  std::size_t rejected_ = 0;
  SteadyClock::time_point lastRejectLog_{};
};

tcp::acceptor bindAcceptor(net::io_context& ioc, const ServerOptions& options) {
  beast::error_code ec;
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

unsigned threadCount(unsigned requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, ReviewHandler handler)
      : ioc_(static_cast<int>(threadCount(options.threads))),
        shared_(std::make_shared<Shared>()),
        control_(net::make_strand(ioc_)),
        signals_(control_),
        timer_(control_) {
    shared_->tls = makeTlsContext(options.certFile, options.keyFile);
    tcp::acceptor acceptor = bindAcceptor(ioc_, options);
    port_ = acceptor.local_endpoint().port();
    shared_->options = std::move(options);
    shared_->handler = std::move(handler);
    listener_ = std::make_shared<Listener>(ioc_, std::move(acceptor), shared_);
  }

  std::uint16_t port() const { return port_; }

  void run() {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    waitForSignal();
    listener_->start();
    const unsigned threads = threadCount(shared_->options.threads);
    log::info("imagegate listening", {{"address", shared_->options.address},
                                      {"port", port_},
                                      {"threads", threads},
                                      {"maxBodyBytes", shared_->options.maxBodyBytes},
                                      {"maxConnections", shared_->options.maxConnections}});
    std::vector<std::thread> workers;
    workers.reserve(threads - 1);
    for (unsigned i = 1; i < threads; ++i) workers.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& worker : workers) worker.join();
    log::info("imagegate stopped");
  }

  void stop() {
    net::post(control_, [this] { beginStop("stop requested"); });
  }

 private:
  void waitForSignal() {
    signals_.async_wait([this](beast::error_code ec, int signal) {
      if (ec) return;
      if (stopping_) {
        log::warn("second signal during shutdown; stopping now", {{"signal", signal}});
        ioc_.stop();
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
    shared_->draining = true;
    log::info("shutting down: draining",
              {{"reason", reason}, {"drainPeriodMs", shared_->options.drainPeriod.count()}});
    timer_.expires_after(shared_->options.drainPeriod);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) stopAccepting();
    });
  }

  void stopAccepting() {
    shared_->closing = true;
    listener_->close();
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMutex);
      for (const auto& [key, weak] : shared_->sessions) {
        if (auto session = weak.lock()) sessions.push_back(std::move(session));
      }
    }
    for (auto& session : sessions) {
      net::post(session->executor(), [session] { session->closeIfIdle(); });
    }
    log::info("stopped accepting; waiting for open connections",
              {{"connections", shared_->connections.load()},
               {"shutdownTimeoutMs", shared_->options.shutdownTimeout.count()}});
    shutdownDeadline_ = SteadyClock::now() + shared_->options.shutdownTimeout;
    waitForConnections();
  }

  void waitForConnections() {
    const std::size_t open = shared_->connections.load();
    if (open == 0) {
      ioc_.stop();
      return;
    }
    if (SteadyClock::now() >= shutdownDeadline_) {
      log::warn("shutdown timeout: dropping open connections", {{"connections", open}});
      ioc_.stop();
      return;
    }
    timer_.expires_after(kShutdownPollInterval);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) waitForConnections();
    });
  }

  net::io_context ioc_;
  std::shared_ptr<Shared> shared_;
  net::strand<net::io_context::executor_type> control_;
  net::signal_set signals_;
  net::steady_timer timer_;
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

}  // namespace imagegate::server
