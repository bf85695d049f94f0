// TaskPool's fairness across keys: the layer scans of one registry host that hangs must not hold
// every thread, nor queue the scans of other hosts behind its own.
#include "service/task_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace imagegate::service {
namespace {

using namespace std::chrono_literals;

/// A gate that tasks wait on until the test opens it.
class Gate {
 public:
  void open() { opened_.set_value(); }
  void wait() const { gate_.wait(); }

 private:
  std::promise<void> opened_;
  std::shared_future<void> gate_ = opened_.get_future().share();
};

TEST(TaskPool, AKeyAtItsLimitLeavesThreadsToOtherKeys) {
  Gate slowRegistry;
  std::atomic<int> slowStarted{0};
  std::promise<void> fastRan;
  {
    TaskPool pool(3, 2);
    for (int i = 0; i < 5; ++i) {
      pool.post("slow.example", [&] {
        ++slowStarted;
        slowRegistry.wait();
      });
    }
    pool.post("fast.example", [&] { fastRan.set_value(); });
    // The fast host's task runs while the slow host's scans hang, and no more than two of them
    // ever start: the other three wait.
    ASSERT_EQ(fastRan.get_future().wait_for(10s), std::future_status::ready);
    const auto until = SteadyClock::now() + 10s;
    while ((slowStarted.load() < 2 || pool.busy() != 5) && SteadyClock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);  // room for a third to start, were the limit not kept
    EXPECT_EQ(slowStarted.load(), 2);
    EXPECT_EQ(pool.busy(), 5u);
    slowRegistry.open();
    EXPECT_TRUE(pool.waitIdle(SteadyClock::now() + 10s));
  }
  EXPECT_EQ(slowStarted.load(), 5);
}

TEST(TaskPool, KeysAreServedInTurnNotInArrivalOrder) {
  Gate firstTask;
  std::mutex mutex;
  std::vector<std::string> order;
  const auto record = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mutex);
    order.push_back(std::move(what));
  };
  TaskPool pool(1);
  pool.post("a", [&] { firstTask.wait(); });
  for (int i = 0; i < 3; ++i) pool.post("a", [&, i] { record("a" + std::to_string(i)); });
  pool.post("b", [&] { record("b0"); });
  firstTask.open();
  ASSERT_TRUE(pool.waitIdle(SteadyClock::now() + 10s));
  // After a's first task, b has its turn before a's queue runs on.
  EXPECT_EQ(order, (std::vector<std::string>{"b0", "a0", "a1", "a2"}));
}

TEST(TaskPool, WithoutKeysEveryThreadServesTheOneQueue) {
  Gate gate;
  std::atomic<int> started{0};
  TaskPool pool(3);
  for (int i = 0; i < 3; ++i) {
    pool.post([&] {
      ++started;
      gate.wait();
    });
  }
  const auto until = SteadyClock::now() + 10s;
  while (started.load() < 3 && SteadyClock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(started.load(), 3);
  gate.open();
  EXPECT_TRUE(pool.waitIdle(SteadyClock::now() + 10s));
}

TEST(TaskPool, DestructionRunsWhatIsQueuedUnderEveryKey) {
  std::atomic<int> ran{0};
  {
    TaskPool pool(2, 1);
    for (int i = 0; i < 20; ++i) pool.post(i % 2 ? "x" : "y", [&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace imagegate::service
