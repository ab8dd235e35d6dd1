#include "runtime/transport/send_budget.h"

#include <chrono>
#include <future>
#include <thread>

#include <catch2/catch.hpp>

namespace mrtrain::runtime {
namespace {

using namespace std::chrono_literals;

TEST_CASE("send budget admits up to its size, then makes senders wait", "[runtime][transport]") {
  SendBudget budget(100, 5s);
  REQUIRE(budget.Acquire(60, true, "p").ok());
  REQUIRE(budget.Acquire(40, true, "p").ok());
  CHECK(budget.reserved() == 100);
  auto waiter = std::async(std::launch::async, [&] { return budget.Acquire(10, true, "p"); });
  CHECK(waiter.wait_for(50ms) == std::future_status::timeout);
  budget.Release(60);
  REQUIRE(waiter.wait_for(5s) == std::future_status::ready);
  CHECK(waiter.get().ok());
  CHECK(budget.reserved() == 50);
}

TEST_CASE("send budget never blocks a sender that may not wait", "[runtime][transport]") {
  SendBudget budget(100, 5s);
  REQUIRE(budget.Acquire(100, true, "p").ok());
  CHECK(budget.Acquire(1000, false, "p").ok());
  CHECK(budget.reserved() == 1100);
}

TEST_CASE("send budget accepts one oversized item when empty", "[runtime][transport]") {
  SendBudget budget(100, 50ms);
  CHECK(budget.Acquire(1000, true, "p").ok());
}

TEST_CASE("send budget times out and Close releases waiters", "[runtime][transport]") {
  SendBudget budget(100, 100ms);
  REQUIRE(budget.Acquire(100, true, "peer-1").ok());
  auto start = std::chrono::steady_clock::now();
  Status s = budget.Acquire(1, true, "peer-1");
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK_THAT(s.message(), Catch::Contains("peer-1"));
  CHECK(std::chrono::steady_clock::now() - start >= 100ms);

  SendBudget slow(100, 10s);
  REQUIRE(slow.Acquire(100, true, "p").ok());
  auto waiter = std::async(std::launch::async, [&] { return slow.Acquire(1, true, "p"); });
  std::this_thread::sleep_for(20ms);
  slow.Close();
  REQUIRE(waiter.wait_for(5s) == std::future_status::ready);
  CHECK(waiter.get().code() == StatusCode::kUnavailable);
  CHECK(slow.Acquire(1, false, "p").code() == StatusCode::kUnavailable);
  slow.Release(100);  // late releases after Close are harmless
  CHECK(slow.reserved() == 0);
}

}  // namespace
}  // namespace mrtrain::runtime
