#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/deadline.h"
#include "registry/registry.h"

// Runs registry fetches on a fixed number of threads, fairly across registry hosts, so that one
// host that hangs or fails cannot hold up the images of every other host:
// - each host has its own queue and at most `perHost` fetches running; idle threads take work
//   from the hosts below their limit in turn;
// - a host that just timed out, refused or answered 5xx is not asked again for `failureMemory`:
//   its fetches fail at once, saying so, instead of queuing behind another hanging fetch;
// - a fetch whose deadline passed while it was queued is dropped without being started;
// - stop() drops everything queued, so shutdown waits only for fetches already running.
//
// Header-only because webhook/CMakeLists.txt lists the service module's sources one by one; it
// is included by facts_fetcher.cc alone.
namespace imagegate::service {

struct FetchLimits {
  std::size_t threads = 16;  ///< Fetches running at once, across all hosts.
  std::size_t perHost = 4;   ///< Fetches running at once from one registry host.
  std::chrono::milliseconds failureMemory{10'000};  ///< 0: every fetch asks the registry.
};

class FetchScheduler {
 public:
  FetchScheduler(registry::RegistryPtr registry, image::Platform platform, FetchLimits limits);
  /// Drops what is queued and waits for the fetches running.
  ~FetchScheduler();

  FetchScheduler(const FetchScheduler&) = delete;
  FetchScheduler& operator=(const FetchScheduler&) = delete;

  /// The facts of `ref`, fetched within `deadline`; a FetchError when the fetch fails, when its
  /// host failed recently (without asking it), when the deadline passes in the queue, or at
  /// shutdown.
  std::future<image::ImageFacts> submit(const image::ImageRef& ref, Deadline deadline);

  /// Refuses further fetches and fails the queued ones; fetches running go on.
  void stop();
  /// Waits until no fetch is running, or until `until`; true when none is.
  bool waitIdle(std::optional<SteadyClock::time_point> until);
  /// One line per fetch running, for the shutdown log.
  std::vector<std::string> describeRunning() const;

 private:
  struct Job {
    image::ImageRef ref;
    Deadline deadline;
    std::promise<image::ImageFacts> promise;
  };
  struct Failure {
    registry::FetchError::Kind kind;
    std::string reason;
    SteadyClock::time_point at;
  };
  struct Host {
    std::deque<Job> queue;
    std::size_t running = 0;
    std::optional<Failure> failure;
  };
  struct RunningFetch {
    std::string image;
    SteadyClock::time_point started;
  };
  struct Outcome {
    std::optional<image::ImageFacts> facts;
    std::exception_ptr error;
    std::optional<Failure> hostFailure;  ///< Set when the error says the host is in trouble.
  };
  using Hosts = std::map<std::string, Host>;

  void workerLoop();
  Outcome fetch(const Job& job) const;
  void finish(Job& job, std::uint64_t ticket, Outcome outcome);

  // The rest expect mutex_ to be held.
  std::optional<Job> takeNextJob();
  Hosts::iterator nextHostWithRoom();
  void dropExpired(Host& host);
  void remember(Host& host, Failure failure);
  /// The error for fetching `ref` while its host's failure is remembered.
  std::optional<registry::FetchError> recentFailure(const image::ImageRef& ref,
                                                    const Host& host) const;
  bool remembersFailure(const Host& host) const;
  void forgetIfIdle(Hosts::iterator host);
  void forgetFadedFailures();

  const registry::RegistryPtr registry_;
  const image::Platform platform_;
  const FetchLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::condition_variable idleChanged_;
  Hosts hosts_;
  std::string lastServed_;  ///< Where the round over the hosts resumes.
  std::map<std::uint64_t, RunningFetch> running_;
  std::uint64_t nextTicket_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  ///< Last: they start once the state above exists.
};

namespace fetch_detail {

/// A fetch that started with little of its budget left times out through no fault of its host;
/// one that had this long and still timed out says the host is not answering.
constexpr auto kTimeoutThatBlamesTheHost = std::chrono::seconds(1);

inline bool blamesTheHost(const registry::FetchError& e, SteadyClock::duration ran) {
  using Kind = registry::FetchError::Kind;
  switch (e.kind()) {
    case Kind::kUnreachable:
    case Kind::kServerError:
      return true;
    case Kind::kTimeout:
      return ran >= kTimeoutThatBlamesTheHost;
    default:  // 401, 403, 404, bad content: about one image, not the host
      return false;
  }
}

/// "2.5 s"
inline std::string secondsText(SteadyClock::duration duration) {
  const auto tenths = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count() / 100;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

inline std::future<image::ImageFacts> failedFuture(const registry::FetchError& error) {
  std::promise<image::ImageFacts> promise;
  promise.set_exception(std::make_exception_ptr(error));
  return promise.get_future();
}

}  // namespace fetch_detail

inline FetchScheduler::FetchScheduler(registry::RegistryPtr registry, image::Platform platform,
                                      FetchLimits limits)
    : registry_(std::move(registry)), platform_(std::move(platform)), limits_(limits) {
  const std::size_t threads = std::max<std::size_t>(1, limits_.threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { workerLoop(); });
}

inline FetchScheduler::~FetchScheduler() {
  stop();
  for (std::thread& thread : threads_) thread.join();
}

inline std::future<image::ImageFacts> FetchScheduler::submit(const image::ImageRef& ref,
                                                             Deadline deadline) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) {
    return fetch_detail::failedFuture(registry::FetchError(
        registry::FetchError::Kind::kTimeout, "not fetching " + ref.str() + ": shutting down"));
  }
  Host& host = hosts_[ref.registry];
  if (auto failure = recentFailure(ref, host)) return fetch_detail::failedFuture(*failure);
  host.queue.push_back(Job{ref, deadline, {}});
  std::future<image::ImageFacts> facts = host.queue.back().promise.get_future();
  workAvailable_.notify_one();
  return facts;
}

inline void FetchScheduler::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  for (auto& [name, host] : hosts_) {
    for (Job& job : host.queue) {
      job.promise.set_exception(std::make_exception_ptr(
          registry::FetchError(registry::FetchError::Kind::kTimeout,
                               "not fetching " + job.ref.str() + ": shutting down")));
    }
    host.queue.clear();
  }
  workAvailable_.notify_all();
}

inline bool FetchScheduler::waitIdle(std::optional<SteadyClock::time_point> until) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto idle = [this] { return running_.empty(); };
  if (!until) {
    idleChanged_.wait(lock, idle);
    return true;
  }
  return idleChanged_.wait_until(lock, *until, idle);
}

inline std::vector<std::string> FetchScheduler::describeRunning() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> lines;
  const auto now = SteadyClock::now();
  for (const auto& [ticket, fetch] : running_) {
    lines.push_back("fetch of " + fetch.image + " running for " +
                    fetch_detail::secondsText(now - fetch.started));
  }
  return lines;
}

inline void FetchScheduler::workerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    std::optional<Job> job;
    workAvailable_.wait(lock, [&] { return stopping_ || (job = takeNextJob()).has_value(); });
    if (!job) return;  // stopping: stop() failed whatever was queued
    const std::uint64_t ticket = nextTicket_++;
    running_.emplace(ticket, RunningFetch{job->ref.str(), SteadyClock::now()});
    lock.unlock();
    Outcome outcome = fetch(*job);
    lock.lock();
    finish(*job, ticket, std::move(outcome));
  }
}

inline FetchScheduler::Outcome FetchScheduler::fetch(const Job& job) const {
  const auto started = SteadyClock::now();
  Outcome outcome;
  try {
    outcome.facts = registry_->fetchFacts(job.ref, platform_, job.deadline);
  } catch (const registry::FetchError& e) {
    outcome.error = std::current_exception();
    if (fetch_detail::blamesTheHost(e, SteadyClock::now() - started)) {
      outcome.hostFailure = Failure{e.kind(), e.what(), SteadyClock::now()};
    }
  } catch (...) {
    outcome.error = std::current_exception();
  }
  return outcome;
}

inline void FetchScheduler::finish(Job& job, std::uint64_t ticket, Outcome outcome) {
  const auto host = hosts_.find(job.ref.registry);
  --host->second.running;
  running_.erase(ticket);
  // Remembered before the waiting review hears of it: its next review must find the memory.
  if (outcome.hostFailure) remember(host->second, *outcome.hostFailure);
  if (outcome.error) {
    job.promise.set_exception(outcome.error);
  } else {
    job.promise.set_value(std::move(*outcome.facts));
  }
  forgetIfIdle(host);
  workAvailable_.notify_one();  // a slot of this host is free
  idleChanged_.notify_all();
}

inline std::optional<FetchScheduler::Job> FetchScheduler::takeNextJob() {
  // Each turn either returns a job or empties one host's queue, so this ends.
  for (auto host = nextHostWithRoom(); host != hosts_.end(); host = nextHostWithRoom()) {
    lastServed_ = host->first;
    dropExpired(host->second);
    if (host->second.queue.empty()) {
      forgetIfIdle(host);
      continue;
    }
    Job job = std::move(host->second.queue.front());
    host->second.queue.pop_front();
    ++host->second.running;
    return job;
  }
  return std::nullopt;
}

inline FetchScheduler::Hosts::iterator FetchScheduler::nextHostWithRoom() {
  // The round resumes after the host served last, so every host with queued work gets its turn.
  auto host = hosts_.upper_bound(lastServed_);
  for (std::size_t looked = 0; looked < hosts_.size(); ++looked, ++host) {
    if (host == hosts_.end()) host = hosts_.begin();
    if (!host->second.queue.empty() && host->second.running < limits_.perHost) return host;
  }
  return hosts_.end();
}

inline void FetchScheduler::dropExpired(Host& host) {
  while (!host.queue.empty() && host.queue.front().deadline.expired()) {
    Job& job = host.queue.front();
    job.promise.set_exception(std::make_exception_ptr(registry::FetchError(
        registry::FetchError::Kind::kTimeout,
        "timed out fetching " + job.ref.str() + ": the deadline passed while it waited behind " +
            std::to_string(host.running) + " fetches from " + job.ref.registry)));
    host.queue.pop_front();
  }
}

inline void FetchScheduler::remember(Host& host, Failure failure) {
  if (limits_.failureMemory.count() == 0) return;
  host.failure = std::move(failure);
  // What waits in the queue would only meet the same trouble: tell it now.
  for (Job& job : host.queue) {
    job.promise.set_exception(std::make_exception_ptr(*recentFailure(job.ref, host)));
  }
  host.queue.clear();
  forgetFadedFailures();
}

inline std::optional<registry::FetchError> FetchScheduler::recentFailure(const image::ImageRef& ref,
                                                                         const Host& host) const {
  if (!remembersFailure(host)) return std::nullopt;
  const auto age = SteadyClock::now() - host.failure->at;
  // The image comes first: a warning is cut short, and the reason may name another image.
  return registry::FetchError(
      host.failure->kind, "cannot fetch " + ref.str() + " from " + ref.registry + ": registry " +
                              ref.registry + " failed " + fetch_detail::secondsText(age) +
                              " ago: " + host.failure->reason + "; not retried for another " +
                              fetch_detail::secondsText(limits_.failureMemory - age));
}

inline bool FetchScheduler::remembersFailure(const Host& host) const {
  return host.failure && SteadyClock::now() - host.failure->at < limits_.failureMemory;
}

inline void FetchScheduler::forgetIfIdle(Hosts::iterator host) {
  const Host& state = host->second;
  if (state.queue.empty() && state.running == 0 && !remembersFailure(state)) hosts_.erase(host);
}

inline void FetchScheduler::forgetFadedFailures() {
  // Hosts that failed once and were never asked again would otherwise stay forever.
  for (auto host = hosts_.begin(); host != hosts_.end();) {
    const auto next = std::next(host);
    forgetIfIdle(host);
    host = next;
  }
}

}  // namespace imagegate::service
