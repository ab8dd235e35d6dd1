#pragma once

#include <string>

namespace mrtrain {

// A duration for people, at most 9 characters plus the days' digits, never negative:
//   12.3s   (under a minute)      4m05s   (under an hour)
//   3h07m   (under a day)         1234d05h (a day or more)
// Negative, not-a-number and infinite values (an estimate that went wrong) give "?", and more
// than 99999 days give ">99999d", so a huge estimate never overflows into nonsense.
std::string FormatDuration(double seconds);

}  // namespace mrtrain
