#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

// Small helpers the integration tests share for driving real processes and fixture scripts.
namespace imagegate::testutil {

/// Single-quotes `text` for /bin/sh.
inline std::string shellQuote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

struct CommandResult {
  int exitCode = -1;
  std::string output;  ///< stdout; callers redirect stderr themselves.
};

/// Runs `command` with /bin/sh and collects its stdout.
inline CommandResult runCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline void runOrThrow(const std::string& command) {
  const CommandResult result = runCommand(command);
  if (result.exitCode != 0) {
    throw std::runtime_error("command failed (" + std::to_string(result.exitCode) +
                             "): " + command + "\n" + result.output);
  }
}

/// Runs `command` with stdin closed and its stdout and stderr appended to `log`. Returns "" on
/// success, else the exit status and the end of the log, for the test's failure message.
inline std::string runLogged(const std::string& command, const std::filesystem::path& log) {
  const int status =
      std::system((command + " >>" + shellQuote(log.string()) + " 2>&1 </dev/null").c_str());
  if (status == 0) return "";
  const std::string output = readFile(log);
  constexpr std::size_t kTail = 4000;
  return "failed (status " + std::to_string(status) + "):\n" +
         output.substr(output.size() > kTail ? output.size() - kTail : 0);
}

using Env = std::map<std::string, std::string>;

/// KEY="VALUE" lines without escapes (the registry fixtures' env-file format).
inline Env readEnv(const std::filesystem::path& path) {
  Env env;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    env[line.substr(0, eq)] = value;
  }
  return env;
}

/// The value of `key`, or "" when the file did not set it.
inline std::string get(const Env& env, const std::string& key) {
  const auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

}  // namespace imagegate::testutil
