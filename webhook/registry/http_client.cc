#include "registry/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>

#include "common/text.h"
#include "registry/registry.h"

namespace imagegate::registry {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Kind = FetchError::Kind;

constexpr std::size_t kErrorBodyLimit = 64 * 1024;
constexpr std::size_t kChunkBytes = 64 * 1024;
constexpr std::size_t kHeaderLimit = 64 * 1024;
// Beast keeps a chunk header (extensions included) and the whole trailer in the read buffer until
// it can parse them, and Boost 1.74 limits neither: with an unbounded buffer, a chunk extension or
// a run of zeros that never ends grows it until memory runs out. A well-formed reply needs room
// for its head and one read beyond it; a full buffer fails the read with buffer_overflow.
constexpr std::size_t kReadBufferLimit = kHeaderLimit + kChunkBytes;

// A reused keep-alive connection the server had already closed: the request never reached it,
// so it is safe to send again on a fresh connection.
struct StaleConnection {};

// Starts one asynchronous operation on `stream` and runs the io_context until it completes or
// `deadline` passes, in which case the stream is closed and the result is beast::error::timeout.
// This is the one place socket deadlines are enforced. The deadline is checked between handlers
// rather than left to Beast's stream timer (expires_at), which misses it while reads complete at
// once: its expired handler runs only after the next read has finished and finds itself stale. A
// peer that kept data coming was read for 11 s past a 300 ms deadline that way.
template <class Start>
ErrorCode runOperation(net::io_context& ioc, beast::tcp_stream& stream, Deadline deadline,
                       Start&& start) {
  // Stays "aborted" if the io_context runs out of work before the handler ran.
  ErrorCode result = net::error::operation_aborted;
  bool done = false;
  std::forward<Start>(start)([&](ErrorCode ec, auto&&...) {
    result = ec;
    done = true;
  });
  ioc.restart();
  while (!done) {
    if (deadline.expired()) {
      stream.close();  // completes the pending operation with operation_aborted
      ioc.restart();
      while (!done && ioc.run_one() > 0) {
      }
      return beast::error::timeout;
    }
    if (ioc.run_one_until(deadline.at()) == 0 && ioc.stopped()) {
      break;
    }
  }
  return result;
}

// Reads the response body with synchronous calls on a non-blocking socket, waiting in poll()
// with what is left of `deadline` when no bytes are there. Why not runOperation: an asynchronous
// read goes through Beast's and asio's composed operations, which on one io_context thread come
// back to the scheduler ~17 times per TLS record, and each time asio polls epoll first: a 455 MB
// layer cost 464,000 epoll_wait calls (34 per recvmsg) and made the fetching thread use twice the
// CPU of the inflating one. A synchronous read has no scheduler: one recvmsg per TLS record. The
// deadline is checked before every read, and a read that finds data returns with at most one
// body chunk, so a peer that keeps data coming cannot hold it past the deadline either. (A read
// may make the TLS engine write, e.g. to answer a KeyUpdate: a few bytes into an empty send
// buffer, which a non-blocking socket takes whole.)
class SyncBodyReader {
 public:
  explicit SyncBodyReader(beast::tcp_stream& lowest) : socket_(lowest.socket()) {
    socket_.non_blocking(true, error_);
  }
  ~SyncBodyReader() {
    ErrorCode ignored;
    socket_.non_blocking(false, ignored);
  }
  SyncBodyReader(const SyncBodyReader&) = delete;
  SyncBodyReader& operator=(const SyncBodyReader&) = delete;

  /// Like http::async_read under runOperation: until the parser is done or wants a new buffer.
  template <class Stream, class Parser>
  ErrorCode read(Stream& stream, beast::flat_buffer& buffer, Parser& parser, Deadline deadline) {
    if (error_) return error_;
    while (true) {
      if (deadline.expired()) return beast::error::timeout;
      ErrorCode ec;
      http::read(stream, buffer, parser, ec);
      if (ec != net::error::would_block && ec != net::error::try_again) return ec;
      // Nothing left to read for now; whatever arrived is in the parser, the flat buffer or the
      // TLS engine, which a retry carries on from.
      if (const ErrorCode waited = waitReadable(deadline)) return waited;
    }
  }

 private:
  ErrorCode waitReadable(Deadline deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline.remaining()).count();
    const long long wait = std::clamp<long long>(left, 0, std::numeric_limits<int>::max());
    pollfd descriptor{socket_.native_handle(), POLLIN, 0};
    // A timeout here is seen by the deadline check before the next read.
    if (::poll(&descriptor, 1, static_cast<int>(wait)) < 0 && errno != EINTR) {
      return ErrorCode(errno, boost::system::system_category());
    }
    return {};
  }

  tcp::socket& socket_;
  ErrorCode error_;
};

bool isConnectionLoss(const ErrorCode& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted || ec == ssl::error::stream_truncated;
}

[[noreturn]] void failTransport(const ErrorCode& ec, Deadline deadline, const std::string& phase) {
  if (ec == beast::error::timeout || deadline.expired()) {
    throw FetchError(Kind::kTimeout, "timed out " + phase);
  }
  throw FetchError(Kind::kUnreachable, phase + " failed: " + ec.message());
}

FetchError malformed(const Url& url, const std::string& what) {
  return FetchError(Kind::kInvalidContent,
                    "the registry's response from " + url.authority() + " is malformed: " + what);
}

bool isIpLiteral(const std::string& host) {
  ErrorCode ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct HttpClient::Connection {
  net::io_context ioc{1};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer{kReadBufferLimit};  // bytes read past one response belong to the next
  SteadyClock::time_point idleSince{};

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

/// True when `dir` holds OpenSSL's hashed certificate names (8 hex digits, '.', a digit), as
/// update-ca-certificates (c_rehash) writes them.
bool hasHashedCertificates(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= 10 && name[8] == '.' && std::isdigit(static_cast<unsigned char>(name[9])) &&
        std::all_of(name.begin(), name.begin() + 8,
                    [](unsigned char c) { return std::isxdigit(c) != 0; })) {
      return true;
    }
  }
  return false;
}

/// The system's trusted CAs. set_default_verify_paths() parses the whole bundle file (~144 PEM
/// certificates on Debian 12: ~25 ms of CPU with OpenSSL 3, most of a cold `imagegate check`); a
/// hashed directory is read lazily, one certificate per lookup during verification. A bundle is
/// still read when SSL_CERT_FILE names one other than the system's (update-ca-certificates writes
/// the system bundle and the hashed directory from the same CAs), or when the directory is not
/// hashed (e.g. minimal container images that ship only ca-certificates.crt).
void trustSystemCertificates(ssl::context& context) {
  ErrorCode ec;
  const char* dirFromEnv = std::getenv(X509_get_default_cert_dir_env());
  const std::string dir = dirFromEnv != nullptr ? dirFromEnv : X509_get_default_cert_dir();
  const bool hashed = hasHashedCertificates(dir);
  if (hashed) context.add_verify_path(dir, ec);
  if (!hashed || ec) {
    context.set_default_verify_paths(ec);  // a host without a system bundle still has caFile
    return;
  }
  const char* fileFromEnv = std::getenv(X509_get_default_cert_file_env());
  std::error_code fsError;
  if (fileFromEnv != nullptr &&
      !std::filesystem::equivalent(fileFromEnv, X509_get_default_cert_file(), fsError)) {
    context.load_verify_file(fileFromEnv, ec);
  }
}

// One ssl::context per CA file (and one for system CAs only), shared by all connections that
// make the same trust decision; an SSL_CTX is safe to share once configured.
struct HttpClient::TlsContexts {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<ssl::context>> byCaFile;

  ssl::context& get(const std::string& caFile) {
    std::lock_guard lock(mutex);
    auto& slot = byCaFile[caFile];
    if (!slot) {
      slot = create(caFile);
    }
    return *slot;
  }

  static std::unique_ptr<ssl::context> create(const std::string& caFile) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(ssl::verify_peer);
    trustSystemCertificates(*context);
    if (!caFile.empty()) {
      ErrorCode ec;
      context->load_verify_file(caFile, ec);
      if (ec) {
        throw FetchError(Kind::kTlsFailure, "cannot load CA file " + caFile + ": " + ec.message());
      }
    }
    return context;
  }
};

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

std::vector<std::string> HttpResponse::headerValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [key, value] : headers) {
    if (key == name) {
      values.push_back(value);
    }
  }
  return values;
}

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), tls_(std::make_unique<TlsContexts>()) {}

HttpClient::~HttpClient() = default;

std::size_t HttpClient::idleConnections() const {
  std::lock_guard lock(poolMutex_);
  std::size_t count = 0;
  for (const auto& [key, connections] : idle_) {
    count += connections.size();
  }
  return count;
}

std::string HttpClient::caFileFor(const Url& url) const {
  for (const std::string& key : {url.authority(), url.host + ":" + url.port}) {
    const auto it = options_.caFiles.find(key);
    if (it != options_.caFiles.end()) {
      return it->second;
    }
  }
  return "";
}

HttpClient::ConnectionPtr HttpClient::takeIdle(const std::string& key) {
  std::lock_guard lock(poolMutex_);
  auto it = idle_.find(key);
  const auto now = SteadyClock::now();
  if (it == idle_.end()) {
    return nullptr;
  }
  ConnectionPtr found;
  while (!found && !it->second.empty()) {
    ConnectionPtr connection = std::move(it->second.back());
    it->second.pop_back();
    if (now - connection->idleSince < options_.maxIdleTime) {
      found = std::move(connection);
    }
  }
  if (it->second.empty()) {
    idle_.erase(it);  // image references name arbitrary hosts: keep no empty slots around
  }
  return found;
}

void HttpClient::putIdle(const std::string& key, ConnectionPtr connection) {
  std::lock_guard lock(poolMutex_);
  std::size_t total = 0;
  for (const auto& [ignored, connections] : idle_) {
    total += connections.size();
  }
  auto& slot = idle_[key];
  if (slot.size() >= options_.maxIdlePerOrigin || total >= options_.maxIdleTotal) {
    return;  // dropping closes it
  }
  connection->idleSince = SteadyClock::now();
  slot.push_back(std::move(connection));
}

HttpClient::ConnectionPtr HttpClient::connect(const Url& url, Deadline deadline) {
  auto connection = std::make_unique<Connection>();
  const std::string host = url.bareHost();
  const Deadline connectDeadline = deadline.capped(options_.connectTimeout);

  std::vector<tcp::endpoint> endpoints;
  const auto port = static_cast<unsigned short>(std::stoul(url.port));
  if (isIpLiteral(host)) {
    endpoints.emplace_back(net::ip::make_address(host), port);
  } else {
    tcp::resolver resolver(connection->ioc);
    tcp::resolver::results_type results;
    bool done = false;
    ErrorCode resolveError;
    resolver.async_resolve(host, url.port, [&](ErrorCode ec, tcp::resolver::results_type r) {
      resolveError = ec;
      results = std::move(r);
      done = true;
    });
    connection->ioc.run_for(connectDeadline.remaining());
    if (!done) {
      resolver.cancel();
      connection->ioc.restart();
      connection->ioc.run();  // getaddrinfo cannot be interrupted; wait for it to return
      throw FetchError(Kind::kTimeout, "timed out resolving " + host);
    }
    if (resolveError) {
      throw FetchError(Kind::kUnreachable,
                       "cannot resolve " + host + ": " + resolveError.message());
    }
    for (const auto& entry : results) {
      endpoints.push_back(entry.endpoint());
    }
  }

  if (url.scheme == "https") {
    connection->tls.emplace(connection->ioc, tls_->get(caFileFor(url)));
  } else {
    connection->plain.emplace(connection->ioc);
  }
  beast::tcp_stream& stream = connection->lowest();
  const ErrorCode connectError =
      runOperation(connection->ioc, stream, connectDeadline,
                   [&](auto handler) { stream.async_connect(endpoints, handler); });
  if (connectError) {
    if (connectError == beast::error::timeout || connectDeadline.expired()) {
      throw FetchError(Kind::kTimeout, "timed out connecting to " + url.authority());
    }
    throw FetchError(Kind::kUnreachable,
                     "cannot connect to " + url.authority() + ": " + connectError.message());
  }
  // The TLS Finished message and the first request are separate small writes; with Nagle the
  // request would wait for the registry's delayed ACK (~40 ms) on every new connection.
  ErrorCode ignored;
  stream.socket().set_option(net::ip::tcp::no_delay(true), ignored);

  if (connection->tls) {
    SSL* ssl = connection->tls->native_handle();
    if (!isIpLiteral(host)) {
      // SNI is for names only (RFC 6066). This is SSL_set_tlsext_host_name() spelled out: the
      // macro's C cast trips -Wold-style-cast.
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str()));
    }
    connection->tls->set_verify_callback(ssl::host_name_verification(host));
    const ErrorCode handshakeError = runOperation(
        connection->ioc, stream, deadline,
        [&](auto handler) { connection->tls->async_handshake(ssl::stream_base::client, handler); });
    if (handshakeError) {
      if (handshakeError == beast::error::timeout || deadline.expired()) {
        throw FetchError(Kind::kTimeout, "timed out in the TLS handshake with " + url.authority());
      }
      std::string detail = handshakeError.message();
      if (detail.find("wrong version number") != std::string::npos) {
        detail +=
            " (the server may speak plain HTTP; only a registry configured insecure: true is "
            "contacted that way)";
      }
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        detail += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      throw FetchError(Kind::kTlsFailure,
                       "TLS handshake with " + url.authority() + " failed: " + detail);
    }
  }
  return connection;
}

namespace {

template <class Stream>
HttpResponse exchange(Stream& stream, beast::tcp_stream& lowest, beast::flat_buffer& buffer,
                      net::io_context& ioc, const HttpRequest& request,
                      const std::string& userAgent, Deadline deadline, const ReadOptions& options,
                      bool reused, bool& keepAlive) {
  http::request<http::string_body> message{http::string_to_verb(request.method), request.url.target,
                                           11};
  message.set(http::field::host, request.url.authority());
  message.set(http::field::user_agent, userAgent);
  for (const auto& [name, value] : request.headers) {
    message.set(name, value);
  }
  if (!request.body.empty() || request.method == "POST") {
    message.body() = request.body;
    message.prepare_payload();
  }

  const ErrorCode writeError = runOperation(
      ioc, lowest, deadline, [&](auto handler) { http::async_write(stream, message, handler); });
  if (writeError) {
    if (reused && isConnectionLoss(writeError)) {
      throw StaleConnection{};
    }
    failTransport(writeError, deadline, "sending the request to " + request.url.authority());
  }

  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kHeaderLimit);
  // Our limit depends on the status, so it is enforced below. Not boost::none: Boost 1.74 compares
  // the Content-Length against the optional, and every length is "greater" than an empty one.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.skip(request.method == "HEAD");
  const ErrorCode headerError = runOperation(ioc, lowest, deadline, [&](auto handler) {
    http::async_read_header(stream, buffer, parser, handler);
  });
  if (headerError) {
    if (reused && isConnectionLoss(headerError) && !parser.got_some()) {
      throw StaleConnection{};
    }
    if (headerError == http::error::header_limit) {
      throw malformed(request.url, "header over " + std::to_string(kHeaderLimit) + " bytes");
    }
    failTransport(headerError, deadline,
                  "waiting for the response from " + request.url.authority());
  }

  HttpResponse response;
  response.status = parser.get().result_int();
  for (const auto& field : parser.get()) {
    const auto name = field.name_string();
    response.headers.emplace_back(asciiLower(std::string_view(name.data(), name.size())),
                                  std::string(field.value()));
  }
  const bool success = response.status >= 200 && response.status < 300;
  const std::size_t limit = success ? options.bodyLimit : kErrorBodyLimit;
  if (success && parser.content_length() && *parser.content_length() > limit) {
    throw FetchError(Kind::kInvalidContent,
                     "response body of " + std::to_string(*parser.content_length()) +
                         " bytes is over the limit of " + std::to_string(limit));
  }

  std::array<char, kChunkBytes> chunk{};
  std::size_t total = 0;
  SyncBodyReader body(lowest);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    ErrorCode readError = body.read(stream, buffer, parser, deadline);
    if (readError == http::error::need_buffer) {
      readError = {};
    }
    if (readError == http::error::buffer_overflow) {
      // The body itself goes to `chunk`; only framing that Beast must hold whole fills the buffer.
      throw malformed(request.url, "chunk header or trailer over " +
                                       std::to_string(kReadBufferLimit) + " bytes");
    }
    if (readError) {
      failTransport(readError, deadline, "reading the response from " + request.url.authority());
    }
    const std::size_t received = chunk.size() - parser.get().body().size;
    total += received;
    if (total > limit) {
      if (success) {
        throw FetchError(Kind::kInvalidContent,
                         "response body is over the limit of " + std::to_string(limit) + " bytes");
      }
      keepAlive = false;  // an error page we do not need in full; drop the rest with the socket
      return response;
    }
    const std::string_view data(chunk.data(), received);
    if (success && options.sink) {
      options.sink(data);
    } else {
      response.body.append(data);
    }
  }
  keepAlive = parser.get().keep_alive();
  return response;
}

}  // namespace

HttpResponse HttpClient::send(const HttpRequest& request, Deadline deadline,
                              const ReadOptions& options) {
  const std::string key = request.url.origin() + "|" + caFileFor(request.url);
  for (int attempt = 0;; ++attempt) {
    ConnectionPtr connection = attempt == 0 ? takeIdle(key) : nullptr;
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = connect(request.url, deadline);
    }
    bool keepAlive = false;
    try {
      HttpResponse response =
          connection->tls ? exchange(*connection->tls, connection->lowest(), connection->buffer,
                                     connection->ioc, request, options_.userAgent, deadline,
                                     options, reused, keepAlive)
                          : exchange(*connection->plain, connection->lowest(), connection->buffer,
                                     connection->ioc, request, options_.userAgent, deadline,
                                     options, reused, keepAlive);
      if (keepAlive) {
        putIdle(key, std::move(connection));
      }
      return response;
    } catch (const StaleConnection&) {
      continue;  // the one retry: a fresh connection cannot be stale
    }
  }
}

}  // namespace imagegate::registry
