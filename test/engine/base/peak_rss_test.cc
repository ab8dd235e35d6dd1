#include "engine/base/peak_rss.h"

#include <sys/mman.h>

#include <cstring>

#include <catch2/catch.hpp>

namespace mrtrain {
namespace {

TEST_CASE("ParseVmHwmBytes reads the peak of a /proc status text in bytes") {
  const std::string status =
      "Name:\tmrtrain\nVmPeak:\t  999999 kB\nVmHWM:\t   13760 kB\nVmRSS:\t   12000 kB\n";
  REQUIRE(ParseVmHwmBytes(status) == int64_t{13760} * 1024);
  REQUIRE(ParseVmHwmBytes("VmHWM: 1 kB") == 1024);  // last line, no newline
}

TEST_CASE("ParseVmHwmBytes refuses what is not 'VmHWM: <n> kB'") {
  REQUIRE_FALSE(ParseVmHwmBytes("VmRSS:\t 100 kB\n"));
  REQUIRE_FALSE(ParseVmHwmBytes(""));
  REQUIRE_FALSE(ParseVmHwmBytes("VmHWM:\t kB\n"));
  REQUIRE_FALSE(ParseVmHwmBytes("VmHWM:\t 100 MB\n"));
  REQUIRE_FALSE(ParseVmHwmBytes("VmHWM:\t 99999999999999999999 kB\n"));
  REQUIRE_FALSE(ParseVmHwmBytes("XVmHWM:\t 100 kB\n"));
}

TEST_CASE("PeakRssBytes sees memory touched, and ResetPeakRss starts it again") {
  const int64_t before = PeakRssBytes();
  REQUIRE(before > (1 << 20));
  constexpr size_t kBytes = 64 << 20;
  {
    // Mapped by hand, so the pages go back to the kernel at munmap whatever the allocator (a
    // sanitizer's keeps freed blocks resident in quarantine).
    void* block = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(block != MAP_FAILED);
    std::memset(block, 1, kBytes);  // touched: resident
    REQUIRE(PeakRssBytes() >= before + int64_t{kBytes} / 2);
    munmap(block, kBytes);
  }
  const int64_t grown = PeakRssBytes();
  // Where the kernel allows it (Linux >= 4.0) the freed block no longer counts.
  if (ResetPeakRss()) REQUIRE(PeakRssBytes() < grown - int64_t{kBytes} / 2);
}

TEST_CASE("FormatMiB rounds to the nearest MiB") {
  REQUIRE(FormatMiB(0) == "0 MiB");
  REQUIRE(FormatMiB(23 << 20) == "23 MiB");
  REQUIRE(FormatMiB((180 << 20) + (600 << 10)) == "181 MiB");
}

}  // namespace
}  // namespace mrtrain
