#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "registry/registry.h"

namespace imagegate::testutil {

/// An in-memory Registry: facts by normalized reference, everything else is kNotFound. It can
/// hold every fetch until `gate` fetches are in flight at once, which proves that a caller
/// overlaps its fetches without measuring time; and it can play a registry host that hangs or
/// fails, counting what it was asked so tests assert on counts rather than on speed.
class FakeRegistry : public registry::Registry {
 public:
  void add(const std::string& image, const std::string& user, std::uint64_t size = 100) {
    image::ImageFacts facts = makeFacts(user, size);
    facts.ref = image::parseImageRef(image);
    images_[facts.ref.str()] = facts;
  }

  /// An image with these facts (their layers served by addBlob), e.g. for layer scans.
  void addFacts(const std::string& image, image::ImageFacts facts) {
    facts.ref = image::parseImageRef(image);
    images_[facts.ref.str()] = std::move(facts);
  }

  /// Images not added one by one get these facts (as when a test mocks every image alike).
  void answerEveryImage(const std::string& user, std::uint64_t size) {
    everyImage_ = makeFacts(user, size);
  }

  /// Fetches wait (up to their deadline) until this many are in flight together.
  void holdUntilConcurrent(int count) { gate_ = count; }

  /// Fetches from `host` hang like a registry that accepts and never answers: until their
  /// deadline (then kTimeout) or until releaseHeldFetches() (then they answer as usual).
  void holdUntilReleased(const std::string& host) { holds_[host] = Hold::kUntilDeadline; }

  /// Like holdUntilReleased, but the deadline is ignored: a fetch stuck where no timeout reaches.
  void holdIgnoringDeadline(const std::string& host) { holds_[host] = Hold::kIgnoringDeadline; }

  /// Every fetch held by holdUntilReleased or holdIgnoringDeadline, now and later, goes on.
  void releaseHeldFetches() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  /// Fetches from `host` fail at once, as an unreachable or broken registry does.
  void failHost(const std::string& host, registry::FetchError::Kind kind,
                const std::string& message) {
    failures_.insert_or_assign(host, registry::FetchError(kind, message));
  }

  int calls() const { return calls_.load(); }
  int maxConcurrent() const { return maxConcurrent_.load(); }

  int callsFor(const std::string& image) const {
    return countOf(callsByImage_, image::parseImageRef(image).str());
  }
  int callsForHost(const std::string& host) const { return countOf(callsByHost_, host); }
  int maxConcurrentForHost(const std::string& host) const {
    return countOf(maxConcurrentByHost_, host);
  }

  /// Serves `bytes` as the blob `digest` of every repository, in chunks of `chunkSize`.
  void addBlob(const std::string& digest, std::string bytes, std::size_t chunkSize = 64 * 1024) {
    std::lock_guard<std::mutex> lock(mutex_);
    blobs_[digest] = {std::move(bytes), chunkSize};
  }

  void fetchBlob(const image::ImageRef& ref, const image::Descriptor& blob,
                 const registry::BlobSink& sink, Deadline) override {
    Blob found;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++callsByBlob_[blob.digest];
      const auto it = blobs_.find(blob.digest);
      if (it == blobs_.end()) {
        throw registry::FetchError(registry::FetchError::Kind::kNotFound,
                                   "blob " + blob.digest + " of " + ref.str() + " not found");
      }
      found = it->second;
    }
    for (std::size_t at = 0; at < found.bytes.size(); at += found.chunkSize) {
      sink(std::string_view(found.bytes).substr(at, found.chunkSize));
    }
  }

  int callsForBlob(const std::string& digest) const { return countOf(callsByBlob_, digest); }

  /// Waits (at most `timeout`, for liveness only) until `count` fetches are in flight together.
  bool waitUntilInFlight(int count, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return inFlight_ >= count; });
  }

  image::ImageFacts fetchFacts(const image::ImageRef& ref, const image::Platform&,
                               Deadline deadline) override {
    ++calls_;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      enter(ref);
      const bool released = waitAsConfigured(lock, ref, deadline);
      leave(ref);
      if (!released) {
        // What a real fetch does when its deadline passes.
        throw registry::FetchError(registry::FetchError::Kind::kTimeout,
                                   "timed out fetching " + ref.str());
      }
    }
    const auto failure = failures_.find(ref.registry);
    if (failure != failures_.end()) throw failure->second;
    return answer(ref);
  }

 private:
  enum class Hold { kUntilDeadline, kIgnoringDeadline };
  struct Blob {
    std::string bytes;
    std::size_t chunkSize = 0;
  };

  static image::ImageFacts makeFacts(const std::string& user, std::uint64_t size) {
    image::ImageFacts facts;
    facts.manifestDigest = "sha256:" + std::string(64, 'a');
    facts.imageConfig.user = user;
    facts.layers.push_back(
        {"application/vnd.oci.image.layer.v1.tar+gzip", facts.manifestDigest, size});
    return facts;
  }

  int countOf(const std::map<std::string, int>& counts, const std::string& key) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = counts.find(key);
    return found == counts.end() ? 0 : found->second;
  }

  void enter(const image::ImageRef& ref) {
    ++callsByImage_[ref.str()];
    ++callsByHost_[ref.registry];
    ++inFlight_;
    const int hostInFlight = ++inFlightByHost_[ref.registry];
    int& hostMax = maxConcurrentByHost_[ref.registry];
    hostMax = std::max(hostMax, hostInFlight);
    maxConcurrent_ = std::max(maxConcurrent_.load(), inFlight_);
    changed_.notify_all();
  }

  void leave(const image::ImageRef& ref) {
    --inFlight_;
    --inFlightByHost_[ref.registry];
    changed_.notify_all();
  }

  /// False when the fetch's deadline passed first.
  bool waitAsConfigured(std::unique_lock<std::mutex>& lock, const image::ImageRef& ref,
                        Deadline deadline) {
    const auto hold = holds_.find(ref.registry);
    if (hold != holds_.end() && hold->second == Hold::kIgnoringDeadline) {
      changed_.wait(lock, [&] { return released_; });
      return true;
    }
    if (hold != holds_.end()) {
      return changed_.wait_until(lock, deadline.at(), [&] { return released_; });
    }
    const bool released =
        changed_.wait_until(lock, deadline.at(), [&] { return inFlight_ >= gate_ || reached_; });
    if (inFlight_ >= gate_) reached_ = true;
    return released;
  }

  image::ImageFacts answer(const image::ImageRef& ref) const {
    const auto found = images_.find(ref.str());
    if (found == images_.end() && everyImage_) {
      image::ImageFacts facts = *everyImage_;
      facts.ref = ref;
      return facts;
    }
    if (found == images_.end()) {
      throw registry::FetchError(
          registry::FetchError::Kind::kNotFound,
          "cannot fetch " + ref.str() + " from " + ref.registry + ": manifest unknown (HTTP 404)");
    }
    return found->second;
  }

  // Configured before the first fetch, read-only afterwards.
  std::map<std::string, image::ImageFacts> images_;
  std::optional<image::ImageFacts> everyImage_;
  std::map<std::string, Hold> holds_;
  std::map<std::string, registry::FetchError> failures_;

  std::atomic<int> calls_{0};
  std::atomic<int> maxConcurrent_{0};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, int> callsByImage_;
  std::map<std::string, int> callsByHost_;
  std::map<std::string, int> callsByBlob_;
  std::map<std::string, Blob> blobs_;
  std::map<std::string, int> inFlightByHost_;
  std::map<std::string, int> maxConcurrentByHost_;
  int inFlight_ = 0;
  int gate_ = 0;
  bool reached_ = false;
  bool released_ = false;
};

/// Releases the fake's held fetches when a test ends, even when an assertion ends it early:
/// declared after the service, it runs before the service's destructor waits for its fetches.
class ReleaseOnExit {
 public:
  explicit ReleaseOnExit(FakeRegistry& registry) : registry_(registry) {}
  ~ReleaseOnExit() { registry_.releaseHeldFetches(); }
  ReleaseOnExit(const ReleaseOnExit&) = delete;
  ReleaseOnExit& operator=(const ReleaseOnExit&) = delete;

 private:
  FakeRegistry& registry_;
};

}  // namespace imagegate::testutil
