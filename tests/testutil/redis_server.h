#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server_process.h"

// A real /usr/bin/redis-server on a free loopback port for the cache tests: no persistence, its
// own directory, stopped by PID (the Child dies with the test process too).
namespace imagegate::testutil {

/// A loopback port nothing listens on right now (the kernel's pick for port 0).
inline int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot pick a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

class RedisServer {
 public:
  /// Starts redis-server in `dir` (created), with `password` required when not empty.
  explicit RedisServer(const std::filesystem::path& dir, const std::string& password = "")
      : dir_(dir) {
    std::filesystem::create_directories(dir_);
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = freeLoopbackPort();
      std::vector<std::string> argv = {"/usr/bin/redis-server",
                                       "--port",
                                       std::to_string(port_),
                                       "--bind",
                                       "127.0.0.1",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--dir",
                                       dir_.string()};
      if (!password.empty()) {
        argv.push_back("--requirepass");
        argv.push_back(password);
      }
      // A log of an earlier run would say "Ready" before this one is.
      std::filesystem::remove(dir_ / "redis.log");
      child_ = startChild(argv, dir_ / "redis.log");
      if (waitFor(
              [&] {
                return readFile(dir_ / "redis.log").find("Ready to accept") != std::string::npos ||
                       child_->waitExit(milliseconds(0)).has_value();
              },
              seconds(20)) &&
          child_->running()) {
        return;
      }
      child_.reset();  // the port was taken meanwhile: try another
    }
    throw std::runtime_error("redis-server did not start:\n" + readFile(dir_ / "redis.log"));
  }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// Kills it at once (SIGKILL): what a crashed or partitioned Redis looks like.
  void kill() {
    if (child_) {
      child_->signal(SIGKILL);
      child_->waitExit(seconds(10));
    }
  }
  /// Stops it (SIGSTOP): a Redis that accepts connections and never answers.
  void pause() const { child_->signal(SIGSTOP); }
  void resume() const { child_->signal(SIGCONT); }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

}  // namespace imagegate::testutil
