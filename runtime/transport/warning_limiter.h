#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace mrtrain::runtime {

// Keeps a flood of similar warnings (one per refused or failed connection: thousands a second
// under a connect flood) to a few log lines: the first `burst` warnings of each `interval` are
// logged, the rest are held back and counted, and their count is logged as one summary line
// once the interval they fell in has ended.
//
//   Admit(t) x burst      -> true         (log each)
//   Admit(t) more         -> false        (held; summary_due() = the interval's end)
//   Summarize(due or later) -> count held (log one line), then 0 until more are held
//
// Pure: the caller passes the time in and owns the timer that calls Summarize.
// Thread-compatible: one owner at a time.
class WarningLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  WarningLimiter(uint64_t burst, Clock::duration interval);

  // One warning at `now`: true to log it, false when it is held back.
  bool Admit(Clock::time_point now);

  // When held-back warnings wait for their summary, the time from which Summarize reports them.
  std::optional<Clock::time_point> summary_due() const;

  // The number of warnings held back since the last summary, once summary_due() has come
  // (before that, and when nothing is held, 0). The count then starts again.
  uint64_t Summarize(Clock::time_point now);

 private:
  // Constant after construction.
  const uint64_t burst_;
  const Clock::duration interval_;

  Clock::time_point window_end_{};  // the current interval ends here
  uint64_t admitted_ = 0;           // warnings logged in the current interval
  uint64_t held_ = 0;               // warnings held back since the last summary
  Clock::time_point summary_due_{};
};

}  // namespace mrtrain::runtime
