#include "engine/base/peak_rss.h"

#include <sys/resource.h>

#include <cctype>
#include <fstream>
#include <sstream>

namespace mrtrain {

std::optional<int64_t> ParseVmHwmBytes(std::string_view status_text) {
  constexpr std::string_view kKey = "VmHWM:";
  size_t at = 0;
  while (at < status_text.size()) {
    size_t end = status_text.find('\n', at);
    if (end == std::string_view::npos) end = status_text.size();
    std::string_view line = status_text.substr(at, end - at);
    at = end + 1;
    if (line.substr(0, kKey.size()) != kKey) continue;
    size_t i = kKey.size();
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i == line.size() || !std::isdigit(static_cast<unsigned char>(line[i]))) return {};
    int64_t kib = 0;
    for (; i < line.size() && std::isdigit(static_cast<unsigned char>(line[i])); ++i) {
      if (kib > (INT64_MAX / 1024 - 9) / 10) return {};  // no overflow of the bytes below
      kib = kib * 10 + (line[i] - '0');
    }
    while (i < line.size() && line[i] == ' ') ++i;
    if (line.substr(i) != "kB") return {};
    return kib * 1024;
  }
  return {};
}

int64_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  if (in) {
    std::ostringstream text;
    text << in.rdbuf();
    if (auto bytes = ParseVmHwmBytes(text.str())) return *bytes;
  }
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) == 0) return int64_t{usage.ru_maxrss} * 1024;  // in KiB
  return 0;
}

bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.close();
  return !out.fail();
}

std::string FormatMiB(int64_t bytes) {
  return std::to_string((bytes + (int64_t{1} << 19)) >> 20) + " MiB";
}

}  // namespace mrtrain
