#include "engine/base/duration_text.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace mrtrain {

std::string FormatDuration(double seconds) {
  constexpr double kMaxDays = 99999;
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  if (seconds >= (kMaxDays + 1) * 86400) return ">99999d";
  char buf[32];
  if (seconds < 59.95) {  // what "%.1f" would round up to 60.0
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
    return buf;
  }
  // Whole seconds from here on, so every field is exact.
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02dh", static_cast<long long>(s / 86400),
                  static_cast<int>(s % 86400 / 3600));
  }
  return buf;
}

}  // namespace mrtrain
