#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mrtrain {

// The "VmHWM:" line of a /proc/<pid>/status text (the peak resident set size) in bytes; empty
// when the text has no such line or it does not read "VmHWM: <n> kB".
std::optional<int64_t> ParseVmHwmBytes(std::string_view status_text);

// This process's peak resident set size in bytes: VmHWM from /proc/self/status (since the
// last ResetPeakRss, else since the process started), else getrusage's ru_maxrss (always since
// the process started); 0 when neither can be read.
int64_t PeakRssBytes();

// Makes the peak start again from the current resident size (writes "5" to
// /proc/self/clear_refs, Linux >= 4.0), so that a long-lived process reports each job's own
// peak. False when the kernel refuses it: the peak then counts from the process's start.
bool ResetPeakRss();

// "23 MiB" (rounded to the nearest MiB), for logs.
std::string FormatMiB(int64_t bytes);

}  // namespace mrtrain
