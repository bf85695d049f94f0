#include "registry/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <limits>
#include <thread>

#include "registry/registry.h"

// HttpClient against a scripted server on a loopback port: connection reuse, stale keep-alive
// connections, chunked bodies, limits and deadlines. TLS is covered by the integration test.
namespace imagegate::registry {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Kind = FetchError::Kind;
using ::testing::HasSubstr;

// Accepts connections one at a time on 127.0.0.1:<ephemeral> and hands each to `session`.
class ScriptedServer {
 public:
  using Session = std::function<void(tcp::socket&)>;

  explicit ScriptedServer(Session session)
      : session_(std::move(session)), acceptor_(ioc_, {net::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    try {
      tcp::socket wake(ioc_);
      wake.connect(acceptor_.local_endpoint());  // unblocks accept()
    } catch (const std::exception&) {
    }
    thread_.join();
  }

  std::string origin() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_; }

  // Reads one request head; false at EOF.
  static bool readRequest(tcp::socket& socket, std::string* head = nullptr) {
    net::streambuf buffer;
    boost::system::error_code ec;
    const std::size_t n = net::read_until(socket, buffer, "\r\n\r\n", ec);
    if (ec) {
      return false;
    }
    if (head != nullptr) {
      *head = std::string(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + n);
    }
    return true;
  }
  static void write(tcp::socket& socket, const std::string& text) {
    boost::system::error_code ec;
    net::write(socket, net::buffer(text), ec);
  }

 private:
  void run() {
    while (true) {
      tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) {
        return;
      }
      ++connections_;
      session_(socket);
    }
  }

  Session session_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

HttpRequest get(const ScriptedServer& server, const std::string& path = "/v2/") {
  HttpRequest request;
  request.url = *parseUrl(server.origin() + path);
  return request;
}

Deadline soon() { return Deadline::after(std::chrono::seconds(10)); }

FetchError sendError(HttpClient& client, const HttpRequest& request, Deadline deadline,
                     const ReadOptions& options = {}) {
  try {
    client.send(request, deadline, options);
  } catch (const FetchError& e) {
    return e;
  }
  ADD_FAILURE() << "no FetchError";
  return FetchError(Kind::kServerError, "");
}

TEST(RegistryHttpClient, ReusesKeepAliveConnections) {
  std::string firstHead;
  ScriptedServer server([&](tcp::socket& socket) {
    for (int i = 0; ScriptedServer::readRequest(socket, i == 0 ? &firstHead : nullptr); ++i) {
      ScriptedServer::write(socket, kOk);
    }
  });
  HttpClient client;
  HttpRequest request = get(server);
  request.headers.emplace_back("Accept", "application/json");
  for (int i = 0; i < 3; ++i) {
    const HttpResponse response = client.send(request, soon(), {});
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(response.body, "ok");
    EXPECT_EQ(response.header("content-length"), "2");
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client.idleConnections(), 1u);
  EXPECT_THAT(firstHead, HasSubstr("GET /v2/ HTTP/1.1\r\n"));
  EXPECT_THAT(firstHead, HasSubstr("Host: 127.0.0.1:"));
  EXPECT_THAT(firstHead, HasSubstr("Accept: application/json\r\n"));
  EXPECT_THAT(firstHead, HasSubstr("User-Agent: imagegate/"));
}

TEST(RegistryHttpClient, RetriesOnceWhenAnIdleConnectionWasClosed) {
  // Answers one request per connection and closes it without saying so, as load balancers do
  // with idle connections.
  ScriptedServer server([](tcp::socket& socket) {
    if (ScriptedServer::readRequest(socket)) {
      ScriptedServer::write(socket, kOk);
    }
  });
  HttpClient client;
  EXPECT_EQ(client.send(get(server), soon(), {}).status, 200u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the FIN arrive
  EXPECT_EQ(client.send(get(server), soon(), {}).status, 200u);
  EXPECT_EQ(server.connections(), 2);
}

TEST(RegistryHttpClient, ConnectionCloseIsNotPooled) {
  ScriptedServer server([](tcp::socket& socket) {
    if (ScriptedServer::readRequest(socket)) {
      ScriptedServer::write(socket,
                            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  HttpClient client;
  EXPECT_EQ(client.send(get(server), soon(), {}).body, "ok");
  EXPECT_EQ(client.idleConnections(), 0u);
}

TEST(RegistryHttpClient, StreamsChunkedBodiesToTheSink) {
  std::string body;
  for (int i = 0; i < 5000; ++i) {
    body += "line " + std::to_string(i) + "\n";
  }
  ScriptedServer server([&](tcp::socket& socket) {
    while (ScriptedServer::readRequest(socket)) {
      std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (std::size_t pos = 0; pos < body.size(); pos += 7000) {
        const std::string chunk = body.substr(pos, 7000);
        char size[16];
        std::snprintf(size, sizeof size, "%zx", chunk.size());
        response += std::string(size) + "\r\n" + chunk + "\r\n";
      }
      ScriptedServer::write(socket, response + "0\r\n\r\n");
    }
  });
  HttpClient client;
  std::string streamed;
  ReadOptions read;
  read.sink = [&](std::string_view chunk) { streamed.append(chunk); };
  const HttpResponse response = client.send(get(server), soon(), read);
  EXPECT_EQ(response.status, 200u);
  EXPECT_TRUE(response.body.empty());
  EXPECT_EQ(streamed, body);
  // The same body is over a smaller limit even without a Content-Length.
  read.bodyLimit = 10000;
  EXPECT_EQ(sendError(client, get(server), soon(), read).kind(), Kind::kInvalidContent);
}

TEST(RegistryHttpClient, ContentLengthOverTheLimitIsRejectedUpfront) {
  ScriptedServer server([](tcp::socket& socket) {
    if (ScriptedServer::readRequest(socket)) {
      ScriptedServer::write(socket, "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nxx");
    }
  });
  HttpClient client;
  ReadOptions read;
  read.bodyLimit = 4096;
  const FetchError error = sendError(client, get(server), soon(), read);
  EXPECT_EQ(error.kind(), Kind::kInvalidContent);
  EXPECT_THAT(error.what(), HasSubstr("over the limit of 4096"));
}

TEST(RegistryHttpClient, ErrorBodiesAreCutNotFatal) {
  const std::string big(200 * 1024, 'e');
  ScriptedServer server([&](tcp::socket& socket) {
    if (ScriptedServer::readRequest(socket)) {
      ScriptedServer::write(socket, "HTTP/1.1 500 Oops\r\nContent-Length: " +
                                        std::to_string(big.size()) + "\r\n\r\n" + big);
    }
  });
  HttpClient client;
  bool sinkCalled = false;
  ReadOptions read;
  read.sink = [&](std::string_view) { sinkCalled = true; };
  const HttpResponse response = client.send(get(server), soon(), read);
  EXPECT_EQ(response.status, 500u);
  EXPECT_LE(response.body.size(), 64u * 1024);
  EXPECT_FALSE(sinkCalled);  // the sink is for 2xx bodies only
  EXPECT_EQ(client.idleConnections(), 0u);
}

TEST(RegistryHttpClient, SilentServerTimesOutAtTheDeadline) {
  ScriptedServer server([](tcp::socket& socket) {
    while (ScriptedServer::readRequest(socket)) {
      // never answers; returns when the client gives up and closes
    }
  });
  HttpClient client;
  const auto started = SteadyClock::now();
  const FetchError error =
      sendError(client, get(server), Deadline::after(std::chrono::milliseconds(300)));
  EXPECT_EQ(error.kind(), Kind::kTimeout);
  EXPECT_THAT(error.what(), HasSubstr("timed out waiting for the response"));
  EXPECT_LT(SteadyClock::now() - started, std::chrono::seconds(5));
}

TEST(RegistryHttpClient, SlowBodyTimesOutAtTheDeadline) {
  ScriptedServer server([](tcp::socket& socket) {
    if (ScriptedServer::readRequest(socket)) {
      ScriptedServer::write(socket, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
      ScriptedServer::readRequest(socket);  // wait for the client to close
    }
  });
  HttpClient client;
  const FetchError error =
      sendError(client, get(server), Deadline::after(std::chrono::milliseconds(300)));
  EXPECT_EQ(error.kind(), Kind::kTimeout);
}

TEST(RegistryHttpClient, RefusedConnectionIsUnreachable) {
  std::string origin;
  {
    ScriptedServer server([](tcp::socket&) {});
    origin = server.origin();
  }  // closed: nothing listens there now
  HttpClient client;
  HttpRequest request;
  request.url = *parseUrl(origin + "/v2/");
  const FetchError error = sendError(client, request, soon());
  EXPECT_EQ(error.kind(), Kind::kUnreachable);
  EXPECT_THAT(error.what(), HasSubstr("cannot connect"));
}

TEST(RegistryHttpClient, UnresolvableHostIsUnreachable) {
  HttpClient client;
  HttpRequest request;
  request.url = *parseUrl("http://does-not-exist.invalid/v2/");
  const FetchError error = sendError(client, request, soon());
  EXPECT_THAT(error.kind(), ::testing::AnyOf(Kind::kUnreachable, Kind::kTimeout));
}

TEST(RegistryHttpClient, MissingCaFileIsTlsFailure) {
  HttpClientOptions options;
  options.caFiles["127.0.0.1:1"] = "/nonexistent/ca.crt";
  HttpClient client(options);
  HttpRequest request;
  request.url = *parseUrl("https://127.0.0.1:1/v2/");
  const FetchError error = sendError(client, request, soon());
  EXPECT_EQ(error.kind(), Kind::kTlsFailure);
  EXPECT_THAT(error.what(), HasSubstr("/nonexistent/ca.crt"));
}

// A chunked reply whose chunk header or trailer never ends (a hostile registry): each is one
// "line" Beast must hold whole before it can parse it, so only the read buffer's own limit stops
// it. The server gives up after 64 MiB, so an unbounded client fails here without exhausting the
// machine.
struct EndlessChunkedReply {
  const char* name;
  std::string start;  ///< after the response head
  std::string repeated;

  friend void PrintTo(const EndlessChunkedReply& reply, std::ostream* out) { *out << reply.name; }
};

class RegistryHttpClientEndlessChunked : public ::testing::TestWithParam<EndlessChunkedReply> {};

TEST_P(RegistryHttpClientEndlessChunked, IsMalformedOnceTheReadBufferIsFull) {
  constexpr std::size_t kServerGivesUpAfter = 64 * 1024 * 1024;
  std::atomic<std::size_t> sent{0};
  ScriptedServer server([&](tcp::socket& socket) {
    if (!ScriptedServer::readRequest(socket)) return;
    boost::system::error_code ec;
    net::write(
        socket,
        net::buffer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + GetParam().start),
        ec);
    std::string block;
    while (block.size() < 64 * 1024) block += GetParam().repeated;
    while (!ec && sent < kServerGivesUpAfter) {
      sent += net::write(socket, net::buffer(block), ec);
    }
  });
  HttpClient client;
  const FetchError error = sendError(client, get(server), soon());
  EXPECT_EQ(error.kind(), Kind::kInvalidContent) << error.what();
  EXPECT_THAT(error.what(), HasSubstr("the registry's response from 127.0.0.1:" +
                                      server.origin().substr(server.origin().rfind(':') + 1) +
                                      " is malformed: chunk header or trailer over "));
  // It stopped reading long before the server gave up (the socket buffers hold a few MiB).
  EXPECT_LT(sent.load(), kServerGivesUpAfter / 2);
}

INSTANTIATE_TEST_SUITE_P(
    Replies, RegistryHttpClientEndlessChunked,
    ::testing::Values(EndlessChunkedReply{"ChunkExtension", "1;ext=", "e"},
                      EndlessChunkedReply{"ZeroChunkSize", "", "0"},
                      EndlessChunkedReply{"Trailers", "0\r\n", "X-Trailer: t\r\n"}),
    [](const ::testing::TestParamInfo<EndlessChunkedReply>& reply) { return reply.param.name; });

// A body that arrives as fast as it is read never leaves a read waiting, which is when Beast's
// stream timer would fire: the deadline must hold anyway.
TEST(RegistryHttpClient, EndlessFastBodyTimesOutAtTheDeadline) {
  ScriptedServer server([](tcp::socket& socket) {
    if (!ScriptedServer::readRequest(socket)) return;
    boost::system::error_code ec;
    net::write(socket,
               net::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")),
               ec);
    const std::string block(64 * 1024, 'b');
    const auto until = SteadyClock::now() + std::chrono::seconds(20);
    while (!ec && SteadyClock::now() < until) {
      net::write(socket, net::buffer(block), ec);
    }
  });
  HttpClient client;
  ReadOptions read;
  read.bodyLimit = std::numeric_limits<std::size_t>::max();
  std::size_t received = 0;
  read.sink = [&](std::string_view chunk) { received += chunk.size(); };
  const auto started = SteadyClock::now();
  const FetchError error =
      sendError(client, get(server), Deadline::after(std::chrono::milliseconds(300)), read);
  EXPECT_EQ(error.kind(), Kind::kTimeout) << error.what();
  EXPECT_LT(SteadyClock::now() - started, std::chrono::seconds(5));
}

}  // namespace
}  // namespace imagegate::registry
