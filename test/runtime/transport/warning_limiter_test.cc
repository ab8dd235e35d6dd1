#include "runtime/transport/warning_limiter.h"

#include <chrono>

#include <catch2/catch.hpp>

namespace mrtrain::runtime {
namespace {

using namespace std::chrono_literals;
using Clock = WarningLimiter::Clock;

TEST_CASE("a connect flood logs the first warnings and one summary per interval",
          "[runtime][transport]") {
  WarningLimiter limiter(5, 1s);
  const Clock::time_point t0 = Clock::now();
  // 6,000 refused connections within 0.2 s.
  int logged = 0;
  for (int i = 0; i < 6000; ++i) logged += limiter.Admit(t0 + i * 33us);
  CHECK(logged == 5);
  REQUIRE(limiter.summary_due().has_value());
  CHECK(*limiter.summary_due() == t0 + 1s);
  CHECK(limiter.Summarize(t0 + 999ms) == 0);  // the interval has not ended
  CHECK(limiter.Summarize(t0 + 1s) == 5995);
  CHECK(limiter.Summarize(t0 + 2s) == 0);  // reported once
  CHECK_FALSE(limiter.summary_due().has_value());
}

TEST_CASE("warnings spaced wider than the burst are all logged", "[runtime][transport]") {
  WarningLimiter limiter(2, 1s);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 10; ++i) CHECK(limiter.Admit(t0 + i * 600ms));
  CHECK_FALSE(limiter.summary_due().has_value());
}

TEST_CASE("a sustained flood gets a burst and a summary in every interval",
          "[runtime][transport]") {
  WarningLimiter limiter(3, 1s);
  const Clock::time_point t0 = Clock::now();
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += limiter.Admit(t0 + i * 10ms);  // 0 .. 0.99 s
  CHECK(logged == 3);
  CHECK(limiter.Summarize(*limiter.summary_due()) == 97);
  logged = 0;
  for (int i = 100; i < 200; ++i) logged += limiter.Admit(t0 + i * 10ms);  // 1 .. 1.99 s
  CHECK(logged == 3);
  CHECK(*limiter.summary_due() == t0 + 2s);
  CHECK(limiter.Summarize(t0 + 2s) == 97);
}

}  // namespace
}  // namespace mrtrain::runtime
