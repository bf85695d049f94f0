#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/deadline.h"
#include "common/log.h"

// Threads for review work that must stay off the server's I/O threads: waiting on registry
// fetches, decoding large bodies, scanning layers. Threads start as work arrives, up to a
// maximum, so a service that never needs one (`imagegate review`, most tests) starts none.
//
// Tasks may name a key (the registry host a layer scan downloads from): each key has its own
// queue and at most `perKey` tasks running, and idle threads serve the keys in turn. So one slow
// or hanging registry can hold at most `perKey` threads and never queues the layers of other
// registries behind its own; the same rule FetchScheduler applies to manifest fetches.
//
// Header-only because webhook/CMakeLists.txt lists the service module's sources one by one.
namespace imagegate::service {

class TaskPool {
 public:
  /// `perKey` 0: a key may use every thread.
  explicit TaskPool(std::size_t maxThreads, std::size_t perKey = 0)
      : maxThreads_(std::max<std::size_t>(1, maxThreads)),
        perKey_(perKey == 0 ? maxThreads_ : std::min(perKey, maxThreads_)) {}

  /// Runs whatever is still queued, then joins the threads.
  ~TaskPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    workAvailable_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void post(std::function<void()> task) { post(std::string(), std::move(task)); }

  void post(const std::string& key, std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_[key].queue.push_back(std::move(task));
    ++queued_;
    if (queued_ > idle_ && threads_.size() < maxThreads_) {
      threads_.emplace_back([this] { workerLoop(); });
    }
    workAvailable_.notify_one();
  }

  /// Waits until nothing is queued or running, or until `until`; true when idle.
  bool waitIdle(std::optional<SteadyClock::time_point> until) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto idle = [this] { return queued_ == 0 && running_ == 0; };
    if (!until) {
      idleChanged_.wait(lock, idle);
      return true;
    }
    return idleChanged_.wait_until(lock, *until, idle);
  }

  /// Tasks queued or running.
  std::size_t busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queued_ + running_;
  }

 private:
  struct Key {
    std::deque<std::function<void()>> queue;
    std::size_t running = 0;
  };
  using Keys = std::map<std::string, Key>;
  struct Taken {
    std::string key;
    std::function<void()> task;
  };

  void workerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      std::optional<Taken> taken;
      ++idle_;
      workAvailable_.wait(
          lock, [&] { return (stopping_ && queued_ == 0) || (taken = takeNext()).has_value(); });
      --idle_;
      if (!taken) return;  // stopping, and every task has run
      ++running_;
      lock.unlock();
      runGuarded(taken->task);
      taken->task = nullptr;  // what it captured goes before the lock is taken again
      lock.lock();
      --running_;
      const auto key = keys_.find(taken->key);
      if (--key->second.running == 0 && key->second.queue.empty()) keys_.erase(key);
      // A slot of that key is free: a thread waiting for runnable work may now have some.
      workAvailable_.notify_all();
      idleChanged_.notify_all();
    }
  }

  /// The next task, from the key after the one served last that is below its limit; expects
  /// mutex_ held.
  std::optional<Taken> takeNext() {
    if (queued_ == 0) return std::nullopt;
    auto key = keys_.upper_bound(lastServed_);
    for (std::size_t looked = 0; looked < keys_.size(); ++looked, ++key) {
      if (key == keys_.end()) key = keys_.begin();
      Key& state = key->second;
      if (state.queue.empty() || state.running >= perKey_) continue;
      Taken taken{key->first, std::move(state.queue.front())};
      state.queue.pop_front();
      ++state.running;
      --queued_;
      lastServed_ = key->first;
      return taken;
    }
    return std::nullopt;
  }

  static void runGuarded(const std::function<void()>& task) {
    // A task that throws is a bug; it must not take the process down with it.
    try {
      task();
    } catch (const std::exception& e) {
      log::error("review task failed", {{"error", e.what()}});
    } catch (...) {
      log::error("review task failed", {{"error", "unknown exception"}});
    }
  }

  const std::size_t maxThreads_;
  const std::size_t perKey_;
  mutable std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::condition_variable idleChanged_;
  Keys keys_;
  std::string lastServed_;  ///< Where the round over the keys resumes.
  std::vector<std::thread> threads_;
  std::size_t queued_ = 0;
  std::size_t idle_ = 0;
  std::size_t running_ = 0;
  bool stopping_ = false;
};

}  // namespace imagegate::service
