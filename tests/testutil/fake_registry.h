#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "registry/registry.h"

namespace imagegate::testutil {

/// An in-memory Registry: facts by normalized reference, everything else is kNotFound. It can
/// hold every fetch until `gate` fetches are in flight at once, which proves that a caller
/// overlaps its fetches without measuring time.
class FakeRegistry : public registry::Registry {
 public:
  void add(const std::string& image, const std::string& user, std::uint64_t size = 100) {
    registry::ImageFacts facts = makeFacts(user, size);
    facts.ref = registry::parseImageRef(image);
    images_[facts.ref.str()] = facts;
  }

  /// Images not added one by one get these facts (as when a test mocks every image alike).
  void answerEveryImage(const std::string& user, std::uint64_t size) {
    everyImage_ = makeFacts(user, size);
  }

  /// Fetches wait (up to their deadline) until this many are in flight together.
  void holdUntilConcurrent(int count) { gate_ = count; }

  int calls() const { return calls_.load(); }
  int maxConcurrent() const { return maxConcurrent_.load(); }

  registry::ImageFacts fetchFacts(const registry::ImageRef& ref, const registry::Platform&,
                                  Deadline deadline) override {
    ++calls_;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++inFlight_;
      maxConcurrent_ = std::max(maxConcurrent_.load(), inFlight_);
      changed_.notify_all();
      const bool released =
          changed_.wait_until(lock, deadline.at(), [&] { return inFlight_ >= gate_ || reached_; });
      if (inFlight_ >= gate_) reached_ = true;
      --inFlight_;
      if (!released) {
        // What a real fetch does when its deadline passes.
        throw registry::FetchError(registry::FetchError::Kind::kTimeout,
                                   "timed out fetching " + ref.str());
      }
    }
    const auto found = images_.find(ref.str());
    if (found == images_.end() && everyImage_) {
      registry::ImageFacts facts = *everyImage_;
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

 private:
  static registry::ImageFacts makeFacts(const std::string& user, std::uint64_t size) {
    registry::ImageFacts facts;
    facts.manifestDigest = "sha256:" + std::string(64, 'a');
    facts.imageConfig.user = user;
    facts.layers.push_back(
        {"application/vnd.oci.image.layer.v1.tar+gzip", facts.manifestDigest, size});
    return facts;
  }

  std::map<std::string, registry::ImageFacts> images_;
  std::optional<registry::ImageFacts> everyImage_;
  std::atomic<int> calls_{0};
  std::atomic<int> maxConcurrent_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  int inFlight_ = 0;
  int gate_ = 0;
  bool reached_ = false;
};

}  // namespace imagegate::testutil
