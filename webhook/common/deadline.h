#pragma once

#include <algorithm>
#include <chrono>

namespace imagegate {

using SteadyClock = std::chrono::steady_clock;

/// The point in time by which a piece of work must be finished (an admission review's
/// `?timeout=`, a registry request's budget). Passed by value; cheap to copy.
class Deadline {
 public:
  explicit Deadline(SteadyClock::time_point at) : at_(at) {}

  static Deadline after(SteadyClock::duration budget) {
    return Deadline(SteadyClock::now() + budget);
  }

  SteadyClock::time_point at() const { return at_; }
  bool expired() const { return SteadyClock::now() >= at_; }
  SteadyClock::duration remaining() const {
    return std::max(SteadyClock::duration::zero(), at_ - SteadyClock::now());
  }
  /// The earlier of this deadline and `now + budget`.
  Deadline capped(SteadyClock::duration budget) const {
    return Deadline(std::min(at_, SteadyClock::now() + budget));
  }

 private:
  SteadyClock::time_point at_;
};

}  // namespace imagegate
