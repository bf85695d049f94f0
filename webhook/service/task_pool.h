#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/deadline.h"
#include "common/log.h"

// Threads for review work that must stay off the server's I/O threads: waiting on registry
// fetches and decoding large bodies. Threads start as work arrives, up to a maximum, so a service
// that never needs one (`imagegate review`, most tests) starts none.
//
// Header-only because webhook/CMakeLists.txt lists the service module's sources one by one; it
// is included by admission_service.cc alone.
namespace imagegate::service {

class TaskPool {
 public:
  explicit TaskPool(std::size_t maxThreads) : maxThreads_(std::max<std::size_t>(1, maxThreads)) {}

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

  void post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    if (queue_.size() > idle_ && threads_.size() < maxThreads_) {
      threads_.emplace_back([this] { workerLoop(); });
    }
    workAvailable_.notify_one();
  }

  /// Waits until nothing is queued or running, or until `until`; true when idle.
  bool waitIdle(std::optional<SteadyClock::time_point> until) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto idle = [this] { return queue_.empty() && running_ == 0; };
    if (!until) {
      idleChanged_.wait(lock, idle);
      return true;
    }
    return idleChanged_.wait_until(lock, *until, idle);
  }

  /// Tasks queued or running.
  std::size_t busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size() + running_;
  }

 private:
  void workerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      ++idle_;
      workAvailable_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping, and every task has run
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      lock.unlock();
      runGuarded(task);
      lock.lock();
      --running_;
      idleChanged_.notify_all();
    }
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
  mutable std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::condition_variable idleChanged_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  std::size_t running_ = 0;
  bool stopping_ = false;
};

}  // namespace imagegate::service
