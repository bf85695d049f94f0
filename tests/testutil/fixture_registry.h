#pragma once

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "shell.h"

// The real registries of tests/fixtures/registry (docker-registry in plain, tls-basic or token
// mode, or a black hole), started and stopped by its scripts, for the integration tests. Header
// only on shell.h, so tests that link no imagegate library can use it.
namespace imagegate::testutil {

namespace fs = std::filesystem;

// Registries end themselves after this long even if a crashed run never stops them; longer than
// the CTest timeout (600 s) of the tests that use it, so a slow but healthy run keeps them.
inline constexpr int kFixtureRegistryLifetimeSeconds = 900;

/// Runs `fixtures`/SCRIPT ARGS (fixtures is tests/fixtures/registry) with its output appended to
/// `log`; throws with the end of the log when it fails.
inline void runFixtureScript(const fs::path& fixtures, const std::string& script,
                             const std::vector<std::string>& args, const fs::path& log) {
  std::string command = shellQuote((fixtures / script).string());
  for (const std::string& arg : args) command += " " + shellQuote(arg);
  if (const std::string failure = runLogged(command, log); !failure.empty()) {
    throw std::runtime_error(script + " " + failure);
  }
}

/// Starts start-registry.sh MODE in the work directory `work` (made here) and returns its
/// registry.env; throws when it does not start.
inline Env startFixtureRegistry(const fs::path& fixtures, const std::string& mode,
                                const fs::path& work, const fs::path& log,
                                int maxLifetimeSeconds = kFixtureRegistryLifetimeSeconds) {
  fs::create_directories(work);
  const std::string failure =
      runLogged("IMAGEGATE_REGISTRY_MAX_LIFETIME=" + std::to_string(maxLifetimeSeconds) + " " +
                    shellQuote((fixtures / "start-registry.sh").string()) + " " + shellQuote(mode) +
                    " " + shellQuote(work.string()),
                log);
  if (!failure.empty()) throw std::runtime_error("start-registry.sh " + failure);
  return readEnv(work / "registry.env");
}

/// Stops, by the PIDs start-registry.sh recorded, what it started in `work`.
inline void stopFixtureRegistry(const fs::path& fixtures, const fs::path& work,
                                const fs::path& log) {
  runFixtureScript(fixtures, "stop-registry.sh", {work.string()}, log);
}

/// Starts the TLS + Basic-auth docker-registry in DIR/registry (its log in DIR/fixture.log) and
/// returns its registry.env; throws when it does not start.
inline Env startTlsBasicRegistry(const fs::path& fixtures, const fs::path& dir) {
  return startFixtureRegistry(fixtures, "tls-basic", dir / "registry", dir / "fixture.log");
}

/// Stops what startTlsBasicRegistry started in DIR; a failure shows only in DIR/fixture.log.
inline void stopTlsBasicRegistry(const fs::path& fixtures, const fs::path& dir) {
  runLogged(shellQuote((fixtures / "stop-registry.sh").string()) + " " +
                shellQuote((dir / "registry").string()),
            dir / "fixture.log");
}

/// One fixture registry (start-registry.sh MODE) in its own work directory, filled with the
/// images of build-images.sh by push(); the scripts' output goes to WORK/fixture.log. Every step
/// throws with that log's tail when it fails. The destructor stops it if stop() was not called.
class FixtureRegistry {
 public:
  FixtureRegistry(fs::path fixtures, std::string mode, fs::path work,
                  int maxLifetimeSeconds = kFixtureRegistryLifetimeSeconds)
      : fixtures_(std::move(fixtures)),
        mode_(std::move(mode)),
        work_(std::move(work)),
        maxLifetimeSeconds_(maxLifetimeSeconds) {}

  ~FixtureRegistry() {
    try {
      stop();
    } catch (const std::exception&) {
      // Already said in fixture.log; a destructor has no one to tell.
    }
  }

  FixtureRegistry(const FixtureRegistry&) = delete;
  FixtureRegistry& operator=(const FixtureRegistry&) = delete;

  void start() {
    // Set first: a start that fails half-way has processes for stop() to end.
    started_ = true;
    env_ = startFixtureRegistry(fixtures_, mode_, work_, log(), maxLifetimeSeconds_);
  }

  /// Pushes the images built in `images` (push-images.sh) and writes the docker config files
  /// (docker-config.sh); not for a black hole.
  void push(const fs::path& images) {
    runFixtureScript(fixtures_, "push-images.sh", {images.string(), work_.string()}, log());
    pushed_ = readEnv(work_ / "pushed.env");
    runFixtureScript(fixtures_, "docker-config.sh", {work_.string()}, log());
  }

  /// A second call, or one without start(), does nothing.
  void stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    stopFixtureRegistry(fixtures_, work_, log());
  }

  /// A value of registry.env, "" when unset (or not started).
  std::string env(const std::string& key) const { return get(env_, key); }
  std::string host() const { return env("REGISTRY_HOST"); }
  std::string port() const { return env("REGISTRY_PORT"); }
  std::string ca() const { return env("REGISTRY_CA"); }
  const fs::path& dir() const { return work_; }

  /// A value of pushed.env without its PUSHED_ prefix, e.g. pushed("STATIC_1_MANIFEST_DIGEST").
  std::string pushed(const std::string& key) const { return get(pushed_, "PUSHED_" + key); }
  /// The pushed reference of a PUSHED_KEYS entry, e.g. ref("STATIC_ROOT_1").
  std::string ref(const std::string& key) const { return pushed(key + "_REF"); }
  std::vector<std::string> pushedKeys() const {
    std::istringstream words(pushed("KEYS"));
    std::vector<std::string> keys;
    for (std::string key; words >> key;) keys.push_back(key);
    return keys;
  }

  /// host[:port] of the token service (token mode), which has its own port.
  std::string tokenAuthority() const {
    const std::string realm = env("TOKEN_REALM");
    const auto start = realm.find("://");
    if (start == std::string::npos) return "";
    return realm.substr(start + 3, realm.find('/', start + 3) - start - 3);
  }

 private:
  fs::path log() const { return work_ / "fixture.log"; }

  fs::path fixtures_;
  std::string mode_;
  fs::path work_;
  int maxLifetimeSeconds_;
  Env env_;
  Env pushed_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace imagegate::testutil
