#include "server/session.h"

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <exception>
#include <optional>
#include <vector>

#include "common/log.h"

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
// The read buffer holds only bytes the parser has not consumed yet: a header in progress, or
// what arrived ahead of the body parser. Its bound is what keeps a client that never ends a line
// (a header, a chunk size, a chunk extension) from growing it.
constexpr std::size_t kReadBufferLimit = kHeaderLimit + 16 * 1024;
// What a keep-alive connection's read buffer may keep between requests: one TLS record, next to
// the two records' worth the TLS engine holds per connection anyway. Reading a body into a buffer
// this large takes one read per record; Beast's default growth reads 512 bytes at a time.
constexpr std::size_t kKeptReadBuffer = 16 * 1024;
// At shutdown an idle keep-alive client gets this long to answer our close_notify.
constexpr Millis kIdleCloseTimeout{1000};
// After an error reply while the client may still be uploading, we read and discard for a while
// before closing: closing with unread data makes the kernel send RST, which can destroy our reply
// before the client reads it.
constexpr Millis kLingerTimeout{2000};
constexpr std::size_t kMaxLingerBytes = 8 * 1024 * 1024;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

/// Beast 1.74 speaks boost::string_view; everything else here is std::string_view.
std::string_view sv(beast::string_view text) { return {text.data(), text.size()}; }

std::optional<std::string_view> field(const http::request_header<>& header, http::field name) {
  const auto found = header.find(name);
  if (found == header.end()) return std::nullopt;
  return sv(found->value());
}

std::uint64_t announcedLength(const http::request_header<>& header) {
  const std::string_view text = field(header, http::field::content_length).value_or("0");
  std::uint64_t length = 0;
  std::from_chars(text.data(), text.data() + text.size(), length);
  return length;
}

RequestHead headOf(const http::request_header<>& header) {
  RequestHead head;
  head.method = sv(header.method_string());
  head.target = sv(header.target());
  head.version = header.version();
  head.hasHost = header.find(http::field::host) != header.end();
  head.contentType = field(header, http::field::content_type);
  head.transferEncoding = field(header, http::field::transfer_encoding);
  return head;
}

/// Runs the handler; an exception it throws becomes a 500 and the server keeps serving.
void callHandler(const ReviewHandler& handler, const Request& request, const ServerOptions& options,
                 const ReviewResponder& respond) {
  const Millis budget = reviewBudget(splitTarget(sv(request.target())).query,
                                     options.defaultReviewTimeout, options.maxReviewTimeout);
  try {
    handler(request.body(), Deadline::after(budget), respond);
  } catch (const std::exception& e) {
    log::error("review handler failed", {{"error", e.what()}});
    respond(textReply(500, std::string("internal error while reviewing: ") + e.what()).http);
  } catch (...) {
    log::error("review handler failed with a non-standard exception");
    respond(textReply(500, "internal error while reviewing").http);
  }
}

/// How a failed read maps to an HTTP answer; nullopt means the peer is gone or idle, so there is
/// nobody to answer.
std::optional<Reply> replyForReadError(const beast::error_code& ec, bool headerDone) {
  if (ec == http::error::body_limit) {
    return textReply(413, "request body too large", true);
  }
  if (ec == http::error::header_limit || (ec == http::error::buffer_overflow && !headerDone)) {
    return textReply(431, "request header too large", true);
  }
  if (ec == http::error::buffer_overflow) {
    return textReply(400, "malformed HTTP request: framing line too long", true);
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

}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket), *state->tls),
        state_(std::move(state)),
        buffer_(kReadBufferLimit),
        firstRequestDeadline_(SteadyClock::now() + state_->options.firstRequestTimeout) {
    beast::error_code ec;
    const auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      address_ = endpoint.address().to_string();
      remote_ = address_ + ":" + std::to_string(endpoint.port());
    }
    ++state_->openSessions;
  }

  ~Session() {
    if (id_) state_->connections.remove(*id_);
    {
      std::lock_guard<std::mutex> lock(state_->sessionsMutex);
      state_->sessions.erase(this);
    }
    --state_->openSessions;
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& address() const { return address_; }

  void start(ConnectionTable::Id id) {
    id_ = id;
    {
      std::lock_guard<std::mutex> lock(state_->sessionsMutex);
      state_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::handshake, shared_from_this()));
  }

  /// Eviction: from any thread.
  void evict() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->evicted_ = true;
      self->closeSocket();
    });
  }

  void closeIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ == Phase::kIdle && self->served_ > 0 && self->buffer_.size() == 0 &&
          !self->parser_->got_some()) {
        beast::get_lowest_layer(self->stream_).cancel();
      }
    });
  }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kWriting, kClosing };

  /// Until its first request is complete a connection has one deadline for everything, shorter
  /// than a keep-alive connection's idle wait: clients that trickle bytes lose their slot fast.
  void armReadTimer(Millis laterRequests) {
    auto& lowest = beast::get_lowest_layer(stream_);
    if (served_ == 0) {
      lowest.expires_at(firstRequestDeadline_);
    } else {
      lowest.expires_after(laterRequests);
    }
  }

  void handshake() {
    armReadTimer(state_->options.readTimeout);
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
    if (state_->closing && served_ > 0) {
      shutdownTls(kIdleCloseTimeout);
      return;
    }
    phase_ = Phase::kIdle;
    if (served_ > 0) {
      state_->connections.setIdle(*id_, true);
      // An idle connection keeps a buffer of up to one TLS record (a malloc and a free per
      // request otherwise); one that a large request grew gives the memory back.
      if (buffer_.size() == 0 && buffer_.capacity() > kKeptReadBuffer) buffer_.shrink_to_fit();
    }
    parser_.emplace();
    parser_->body_limit(state_->options.maxBodyBytes);
    parser_->header_limit(kHeaderLimit);
    pendingReply_.reset();
    readError_.clear();
    armReadTimer(state_->options.idleTimeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::onHeader, shared_from_this()));
  }

  void onHeader(beast::error_code ec, std::size_t) {
    if (served_ > 0) state_->connections.setIdle(*id_, false);
    if (ec) {
      onReadError(ec);
      return;
    }
    phase_ = Phase::kReading;
    started_ = SteadyClock::now();
    const RouteTable::Decision decision = state_->routes.decide(headOf(parser_->get()));
    route_ = decision.route;
    pendingReply_ = decision.refusal;
    if (pendingReply_ && pendingReply_->close) {  // framing we refuse: the body cannot be read
      respond(std::move(*pendingReply_));
      return;
    }
    if (!reserveBody()) return;
    buffer_.reserve(std::min<std::size_t>(announcedLength(parser_->get()), kKeptReadBuffer));
    const bool expectsContinue =
        field(parser_->get(), http::field::expect).value_or("") == "100-continue";
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

  /// Counts the announced body against the memory all uploads may hold together.
  bool reserveBody() {
    // Zero when there is no Content-Length (then there is no body: Transfer-Encoding is refused).
    // Read from the header Beast has validated: GCC 12 under ASan misreads the boost::optional
    // of parser::content_length() as maybe-uninitialized.
    const std::uint64_t length = announcedLength(parser_->get());
    if (length == 0 || length > state_->options.maxBodyBytes) return true;
    if (state_->connections.reserveBody(*id_, static_cast<std::size_t>(length))) return true;
    log::warn("request bodies in flight at their limit; refusing a request",
              {{"remote", remote_}, {"limitBytes", state_->options.maxBodyBytesInFlight}});
    Reply busy = textReply(503, "server busy: too many request bodies in flight; retry", true);
    respond(std::move(busy));
    return false;
  }

  void sendContinue() {
    continue_ = http::response<http::empty_body>(http::status::continue_, parser_->get().version());
    beast::get_lowest_layer(stream_).expires_after(state_->options.readTimeout);
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
    armReadTimer(state_->options.readTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::onBody, shared_from_this()));
  }

  void onBody(beast::error_code ec, std::size_t) {
    if (ec) {
      onReadError(ec);
      return;
    }
    state_->connections.requestReceived(*id_);
    if (pendingReply_) {
      respond(std::move(*pendingReply_));
      return;
    }
    if (route_->kind == RouteTable::Kind::kReview) {
      review();
      return;
    }
    respond(route_->answer());
  }

  /// Hands the body to the handler. It answers at once on this thread (the usual case) or later
  /// from another thread; either way the answer is written from this connection's thread, and
  /// nothing reads from the connection or touches the parser until then.
  void review() {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    ReviewResponder responder = [self = shared_from_this(), answered](HttpReply reply) {
      if (answered->exchange(true)) return;  // exactly one answer per request
      net::dispatch(self->stream_.get_executor(), [self, reply = std::move(reply)]() mutable {
        self->respond(Reply{std::move(reply), "", false});
      });
    };
    callHandler(state_->handler, parser_->get(), state_->options, responder);
  }

  void onReadError(const beast::error_code& ec) {
    if (evicted_) {
      closeSocket();
      return;
    }
    if (auto reply = replyForReadError(ec, parser_->is_header_done())) {
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
    if (evicted_) return;  // the socket is closed; the answer has nowhere to go
    phase_ = Phase::kWriting;
    const bool headerRead = parser_->is_header_done();
    const auto& request = parser_->get();
    // A reply sent before the whole body arrived leaves unread bytes behind: the connection is
    // out of sync and must close.
    const bool bodyUnread = !parser_->is_done();
    const bool keepAlive =
        headerRead && request.keep_alive() && !reply.close && !bodyUnread && !state_->draining;
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
    beast::get_lowest_layer(stream_).expires_after(state_->options.readTimeout);
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
    state_->connections.releaseBody(*id_);
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
      shutdownTls(state_->closing ? kIdleCloseTimeout : state_->options.readTimeout);
    }
  }

  void discard() {
    phase_ = Phase::kClosing;
    parser_.reset();  // what was read of the body is not needed any more
    beast::get_lowest_layer(stream_).expires_at(lingerUntil_);
    if (!discardBuffer_) discardBuffer_ = std::make_unique<std::array<char, 16 * 1024>>();
    stream_.async_read_some(net::buffer(*discardBuffer_),
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
  std::shared_ptr<ServerState> state_;
  std::optional<ConnectionTable::Id> id_;
  std::string address_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const RouteTable::Route* route_ = nullptr;
  std::optional<Reply> pendingReply_;
  std::string readError_;  ///< Why the request could not be read, for the request log line.
  http::response<http::empty_body> continue_;
  Response response_;
  Phase phase_ = Phase::kHandshake;
  bool evicted_ = false;
  std::size_t served_ = 0;
  SteadyClock::time_point firstRequestDeadline_;
  SteadyClock::time_point started_;
  SteadyClock::time_point lingerUntil_;
  std::size_t discarded_ = 0;
  std::unique_ptr<std::array<char, 16 * 1024>> discardBuffer_;  ///< Only while lingering.
};

SessionPtr startSession(tcp::socket&& socket, const std::shared_ptr<ServerState>& state) {
  auto session = std::make_shared<Session>(std::move(socket), state);
  const std::weak_ptr<Session> weak = session;
  const auto id = state->connections.admit(session->address(), [weak] {
    if (auto victim = weak.lock()) victim->evict();
  });
  if (!id) return nullptr;
  session->start(*id);
  return session;
}

void closeIdleSessions(ServerState& state) {
  std::vector<SessionPtr> sessions;
  {
    std::lock_guard<std::mutex> lock(state.sessionsMutex);
    for (const auto& [key, weak] : state.sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->closeIfIdle();
}

}  // namespace imagegate::server
