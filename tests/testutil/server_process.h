#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "certificates.h"
#include "shell.h"

// Child processes for integration tests: a real `imagegate serve` on a free loopback port, its
// TLS material, and waiting on conditions without measuring speed. Needs IMAGEGATE_BINARY.
namespace imagegate::testutil {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Generous: only for liveness, never to measure speed.
inline constexpr seconds kServerStartupTimeout{30};

/// A child process with stdout and stderr in a file. Dies with the test process (PDEATHSIG), so
/// a crashed test never leaves a server behind; otherwise ended by the destructor.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& output, bool pipeStdin = false)
      : output_(output) {
    int fds[2] = {-1, -1};
    if (pipeStdin && pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) exec(argv, fds, pipeStdin);
    if (pipeStdin) {
      close(fds[0]);
      stdin_ = fds[1];
    }
  }

  ~Child() {
    closeStdin();
    if (running()) {
      kill(pid_, SIGTERM);
      if (!waitExit(seconds(10))) {
        kill(pid_, SIGKILL);
        waitExit(seconds(10));
      }
    }
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const fs::path& output() const { return output_; }
  bool running() const { return !exitCode_.has_value(); }

  void closeStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }

  void writeStdin(const std::string& text) {
    if (stdin_ >= 0 && write(stdin_, text.data(), text.size()) < 0) closeStdin();
  }

  void signal(int number) const {
    if (!exitCode_) kill(pid_, number);
  }

  /// The exit code (128 + signal when killed), or nullopt if still running after `timeout`.
  std::optional<int> waitExit(milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!exitCode_) {
      int status = 0;
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        exitCode_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (std::chrono::steady_clock::now() >= until) {
        break;
      } else {
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
    return exitCode_;
  }

 private:
  [[noreturn]] static void exec(const std::vector<std::string>& argv, const int fds[2],
                                bool pipeStdin) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pipeStdin) {
      dup2(fds[0], STDIN_FILENO);
      close(fds[0]);
      close(fds[1]);
    }
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }

  // The output file is opened by the child itself: see startChild.
  fs::path output_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::optional<int> exitCode_;
};

/// Runs `argv` with stdout and stderr appended to `output` (via the shell's redirection, which
/// keeps Child free of file-descriptor juggling).
inline std::unique_ptr<Child> startChild(std::vector<std::string> argv, const fs::path& output,
                                         bool pipeStdin = false) {
  std::string command = "exec";
  for (const auto& arg : argv) command += " " + shellQuote(arg);
  command += " >>" + shellQuote(output.string()) + " 2>&1";
  return std::make_unique<Child>(std::vector<std::string>{"/bin/sh", "-c", command}, output,
                                 pipeStdin);
}

/// A running `imagegate serve` and the port it reported.
struct ServerProcess {
  std::unique_ptr<Child> child;
  int port = 0;
};

inline std::optional<int> reportedPort(const std::string& log) {
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    const auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("msg", "") == "imagegate listening" &&
        entry.contains("port")) {
      return entry["port"].get<int>();
    }
  }
  return std::nullopt;
}

/// Starts `imagegate serve` with dir's serving.crt/serving.key and policies.yaml; `launcher`
/// goes before the binary (e.g. prlimit with a file descriptor limit).
inline ServerProcess startServer(const fs::path& dir, const std::string& name,
                                 const std::vector<std::string>& extraArgs,
                                 const std::vector<std::string>& launcher = {}) {
  std::vector<std::string> argv = launcher;
  for (const std::string& arg :
       {std::string(IMAGEGATE_BINARY), std::string("serve"), std::string("--listen"),
        std::string("127.0.0.1:0"), std::string("--tls-cert"), (dir / "serving.crt").string(),
        std::string("--tls-key"), (dir / "serving.key").string(), std::string("--policy"),
        (dir / "policies.yaml").string()}) {
    argv.push_back(arg);
  }
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  const fs::path log = dir / (name + ".log");
  ServerProcess server{startChild(argv, log), 0};
  const auto until = std::chrono::steady_clock::now() + kServerStartupTimeout;
  while (std::chrono::steady_clock::now() < until) {
    if (const auto port = reportedPort(readFile(log))) {
      server.port = *port;
      return server;
    }
    if (server.child->waitExit(milliseconds(0))) {
      throw std::runtime_error("imagegate serve exited during startup:\n" + readFile(log));
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  throw std::runtime_error("imagegate serve did not report its port:\n" + readFile(log));
}

/// Connections to `port` in the ESTABLISHED state, from /proc/net/tcp (IPv4 loopback).
inline int establishedConnections(int port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // header
  int count = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const std::size_t colon = local.find(':');
    if (colon != std::string::npos && state == "01" &&
        std::stoi(local.substr(colon + 1), nullptr, 16) == port) {
      ++count;
    }
  }
  return count;
}

inline bool waitFor(const std::function<bool()>& condition, milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

}  // namespace imagegate::testutil
