#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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

// Child processes for integration tests: a real `imagegate serve` on a free loopback port, the
// test directory with its TLS material and policies, and waiting on conditions without measuring
// speed. Needs IMAGEGATE_BINARY.
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
  /// Asks the kernel, so a child that died since the last wait counts as ended.
  bool running() { return !waitExit(milliseconds(0)).has_value(); }

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
/// keeps Child free of file-descriptor juggling) and stdin from /dev/null unless `pipeStdin`.
inline std::unique_ptr<Child> startChild(std::vector<std::string> argv, const fs::path& output,
                                         bool pipeStdin = false) {
  std::string command = "exec";
  for (const auto& arg : argv) command += " " + shellQuote(arg);
  command += " >>" + shellQuote(output.string()) + " 2>&1";
  if (!pipeStdin) command += " </dev/null";
  return std::make_unique<Child>(std::vector<std::string>{"/bin/sh", "-c", command}, output,
                                 pipeStdin);
}

/// A new directory /tmp/imagegate-NAME-XXXXXX; throws when it cannot be made.
inline fs::path makeTestDir(const std::string& name) {
  std::string pattern = "/tmp/imagegate-" + name + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

/// A new test directory (makeTestDir) holding what startServer(dir, ...) serves with: a test CA
/// (ca.crt), serving.crt and serving.key, and `policies` as policies.yaml.
inline fs::path makeServeDir(const std::string& name, const std::string& policies) {
  const fs::path dir = makeTestDir(name);
  generateCertificates(dir);
  writeFile(dir / "policies.yaml", policies);
  return dir;
}

/// Removes a test directory, unless a test of this run has failed or IMAGEGATE_KEEP_TEST_DIR is
/// set: its logs are what a failure is read from.
inline void removeTestDir(const fs::path& dir) {
  if (dir.empty() || ::testing::UnitTest::GetInstance()->Failed() ||
      std::getenv("IMAGEGATE_KEEP_TEST_DIR") != nullptr) {
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

/// A running `imagegate serve` and the port it reported; ended (SIGTERM, then SIGKILL) when the
/// child is reset or destroyed.
struct ServerProcess {
  std::unique_ptr<Child> child;
  int port = 0;

  bool running() const { return child && child->running(); }
  /// Its stdout and stderr so far, for failure messages.
  std::string log() const { return child ? readFile(child->output()) : "(not started)"; }
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

/// The files `imagegate serve` is started with.
struct ServeFiles {
  fs::path cert;
  fs::path key;
  fs::path policy;  ///< a file or a directory of them

  /// DIR's serving.crt, serving.key and policies.yaml, as makeServeDir writes them.
  static ServeFiles in(const fs::path& dir) {
    return {dir / "serving.crt", dir / "serving.key", dir / "policies.yaml"};
  }
};

/// Starts `imagegate serve` on 127.0.0.1:0 with `files` and `extraArgs`, its output in `log`, and
/// waits for the port it reports; throws with the log when it exits or reports none. `launcher`
/// goes before the binary (e.g. prlimit with a file descriptor limit).
inline ServerProcess startServer(const ServeFiles& files, const fs::path& log,
                                 const std::vector<std::string>& extraArgs,
                                 const std::vector<std::string>& launcher = {}) {
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), {IMAGEGATE_BINARY, "serve", "--listen", "127.0.0.1:0", "--tls-cert",
                           files.cert.string(), "--tls-key", files.key.string(), "--policy",
                           files.policy.string()});
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
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

/// Starts `imagegate serve` with dir's serving.crt, serving.key and policies.yaml (makeServeDir),
/// its output in DIR/NAME.log.
inline ServerProcess startServer(const fs::path& dir, const std::string& name,
                                 const std::vector<std::string>& extraArgs,
                                 const std::vector<std::string>& launcher = {}) {
  return startServer(ServeFiles::in(dir), dir / (name + ".log"), extraArgs, launcher);
}

/// A suite whose tests share one `imagegate serve`, started by SetUpTestSuite through startSuite
/// in a directory of its own (makeServeDir), ended and cleaned up after the last test.
class ServeSuite : public ::testing::Test {
 protected:
  /// Makes the directory with `policies` and starts the server (log in DIR/server.log) with
  /// `serveArgs`; a failure fails every test of the suite in SetUp.
  static void startSuite(const std::string& name, const std::string& policies,
                         const std::vector<std::string>& serveArgs) {
    setupError_.clear();  // the statics are shared by every suite derived from this one
    try {
      dir_ = makeServeDir(name, policies);
      server_ = std::make_unique<ServerProcess>(startServer(dir_, "server", serveArgs));
    } catch (const std::exception& e) {
      setupError_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    server_.reset();
    removeTestDir(dir_);
  }

  void SetUp() override {
    ASSERT_TRUE(setupError_.empty()) << setupError_;
    ASSERT_TRUE(server_->running()) << "server died:\n" << server_->log();
  }

  static inline fs::path dir_;
  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::string setupError_;
};

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
