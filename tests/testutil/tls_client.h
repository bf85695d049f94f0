#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <csignal>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

// A raw client for hostile-client tests: a TCP socket to 127.0.0.1 and, on top, TLS verified
// against a test CA, with bounded blocking reads and writes, so a test can send exactly the
// bytes an attacker would (chunk headers that never end, trickled headers, stalled uploads).
namespace imagegate::testutil {

/// A connected TCP socket to 127.0.0.1:port; -1 when the connection failed.
inline int tcpConnect(int port, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class TlsClient {
 public:
  /// Connects and completes the handshake; throws std::runtime_error when either fails.
  TlsClient(int port, const std::filesystem::path& caFile,
            std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : context_(SSL_CTX_new(TLS_client_method())) {
    // Writing to a connection the server has closed is what these tests do on purpose: it must
    // fail the write (EPIPE), not kill the test process.
    signal(SIGPIPE, SIG_IGN);
    if (!context_ || SSL_CTX_load_verify_locations(context_, caFile.c_str(), nullptr) != 1) {
      release();
      throw std::runtime_error("cannot load test CA " + caFile.string());
    }
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    fd_ = tcpConnect(port, timeout);
    if (fd_ < 0) {
      release();
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    ssl_ = SSL_new(context_);
    SSL_set_fd(ssl_, fd_);
    // SSL_set_tlsext_host_name() spelled out: the macro's C cast trips -Wold-style-cast.
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>("localhost"));
    if (SSL_connect(ssl_) != 1) {
      ERR_clear_error();
      release();  // a constructor that throws gets no destructor call
      throw std::runtime_error("TLS handshake with 127.0.0.1:" + std::to_string(port) + " failed");
    }
  }

  ~TlsClient() { release(); }

  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  /// False once the server has closed or reset the connection (or a write timed out).
  bool send(std::string_view data) {
    while (!data.empty()) {
      const int written = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (written <= 0) {
        ERR_clear_error();
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(written));
    }
    return true;
  }

  /// Reads until the server closes, a read times out, or `limit` bytes have arrived.
  std::string readAll(std::size_t limit = 1 << 20) {
    std::string received;
    char buffer[16384];
    while (received.size() < limit) {
      const int n = SSL_read(ssl_, buffer, sizeof buffer);
      if (n <= 0) {
        ERR_clear_error();
        break;
      }
      received.append(buffer, static_cast<std::size_t>(n));
    }
    return received;
  }

  /// Reads one response: its head, then a Content-Length body. "" when none arrives.
  std::string readResponse() {
    std::string received;
    char buffer[16384];
    while (true) {
      const std::size_t headEnd = received.find("\r\n\r\n");
      if (headEnd != std::string::npos) {
        const std::size_t length = contentLength(received.substr(0, headEnd));
        if (received.size() >= headEnd + 4 + length) return received;
      }
      const int n = SSL_read(ssl_, buffer, sizeof buffer);
      if (n <= 0) {
        ERR_clear_error();
        return received;
      }
      received.append(buffer, static_cast<std::size_t>(n));
    }
  }

 private:
  void release() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
    if (context_ != nullptr) SSL_CTX_free(context_);
    ssl_ = nullptr;
    fd_ = -1;
    context_ = nullptr;
  }

  static std::size_t contentLength(const std::string& head) {
    for (const char* name : {"Content-Length: ", "content-length: "}) {
      const std::size_t at = head.find(name);
      if (at != std::string::npos) return std::stoul(head.substr(at + std::string(name).size()));
    }
    return 0;
  }

  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

/// The resident set size of a process, in bytes, from /proc (0 when it is gone).
inline std::size_t residentBytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

/// Open file descriptors of a process (0 when it is gone).
inline std::size_t openDescriptors(int pid) {
  std::error_code ec;
  std::size_t count = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++count;
  }
  return count;
}

}  // namespace imagegate::testutil
