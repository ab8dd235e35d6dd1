#include "runtime/transport/warning_limiter.h"

namespace mrtrain::runtime {

WarningLimiter::WarningLimiter(uint64_t burst, Clock::duration interval)
    : burst_(burst), interval_(interval) {}

bool WarningLimiter::Admit(Clock::time_point now) {
  if (now >= window_end_) {
    window_end_ = now + interval_;
    admitted_ = 0;
  }
  if (admitted_ < burst_) {
    ++admitted_;
    return true;
  }
  if (held_ == 0) summary_due_ = window_end_;
  ++held_;
  return false;
}

std::optional<WarningLimiter::Clock::time_point> WarningLimiter::summary_due() const {
  if (held_ == 0) return std::nullopt;
  return summary_due_;
}

uint64_t WarningLimiter::Summarize(Clock::time_point now) {
  if (held_ == 0 || now < summary_due_) return 0;
  const uint64_t held = held_;
  held_ = 0;
  return held;
}

}  // namespace mrtrain::runtime
