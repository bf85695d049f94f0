#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// `imagegate serve` picks up new certificates, policies and registry settings without a restart.
//
// Files are polled by content, not watched with inotify: Kubernetes updates ConfigMap and Secret
// volumes by writing a new timestamped directory and swapping the `..data` symlink to it, so the
// file a path names changes without that file ever being written, and an inotify watch on it
// would have to be re-armed on the right directory. A digest of the contents every second sees
// every way a file can change (symlink swap, rename over, write in place) and costs a few small
// reads.
namespace imagegate::cli {

/// The files the policy loader reads for `path`: the file itself, or the *.yaml and *.yml
/// entries of the directory (what policy::loadPolicies reads), sorted.
std::vector<std::string> policyFiles(const std::string& path);

/// The files a registry config names (itself, its dockerConfig and caFiles); just `path` when
/// it cannot be read (the reload then reports why).
std::vector<std::string> registryConfigFiles(const std::string& path);

/// A digest of the names and contents of `files` ("missing" for one that cannot be read), as
/// 64 hex digits: equal digests, same files.
std::string contentDigest(const std::vector<std::string>& files);

/// The first 12 hex digits of contentDigest(): the policy revision /readyz shows.
std::string shortRevision(const std::vector<std::string>& files);

/// Polls groups of files and applies each group again when its contents change.
class Reloader {
 public:
  struct Watch {
    std::string kind;                                 ///< "certificate", "policies", ...
    std::function<std::vector<std::string>()> files;  ///< Listed again on every poll.
    /// Loads and installs the new contents; throws (any std::exception) to reject them, leaving
    /// what is installed untouched.
    std::function<void()> apply;
  };
  /// Called after every reload attempt with its outcome.
  using Outcome = std::function<void(const std::string& kind, bool ok)>;

  /// Records what the files hold now (what the caller loaded at start-up); polls from a thread
  /// of its own every `interval`.
  Reloader(std::vector<Watch> watches, std::chrono::milliseconds interval, Outcome outcome);
  /// Stops polling (a reload running finishes first).
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  /// One poll of every watch, on the calling thread.
  void pollOnce();

 private:
  struct Watched {
    Watch watch;
    std::string digest;  ///< Of the contents last applied or rejected.
  };
  void loop(std::chrono::milliseconds interval);

  std::vector<Watched> watched_;
  Outcome outcome_;
  std::mutex pollMutex_;  ///< One poll at a time: the thread's and pollOnce() callers'.
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace imagegate::cli
