#include "engine/base/duration_text.h"

#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

namespace mrtrain {
namespace {

TEST_CASE("durations under a minute show tenths of seconds", "[base]") {
  CHECK(FormatDuration(0) == "0.0s");
  CHECK(FormatDuration(4.94) == "4.9s");
  CHECK(FormatDuration(59.94) == "59.9s");
  CHECK(FormatDuration(59.96) == "1m00s");
}

TEST_CASE("durations under a day show two fields", "[base]") {
  CHECK(FormatDuration(245) == "4m05s");
  CHECK(FormatDuration(3599.4) == "59m59s");
  CHECK(FormatDuration(3600) == "1h00m");
  CHECK(FormatDuration(3 * 3600 + 7 * 60 + 59) == "3h07m");
}

TEST_CASE("long durations show days and hours", "[base]") {
  CHECK(FormatDuration(86400) == "1d00h");
  CHECK(FormatDuration(1234 * 86400.0 + 5 * 3600 + 1800) == "1234d05h");
  // The estimate of issue 10 item 17 (epochs: 1e12), once shown as "93437553m-8s".
  CHECK(FormatDuration(93437553.0 * 60) == "64887d04h");
  CHECK(FormatDuration(99999 * 86400.0) == "99999d00h");
}

TEST_CASE("impossible or huge durations never print negative or overflowed fields", "[base]") {
  CHECK(FormatDuration(-1) == "?");
  CHECK(FormatDuration(std::nan("")) == "?");
  CHECK(FormatDuration(std::numeric_limits<double>::infinity()) == "?");
  CHECK(FormatDuration(100000 * 86400.0) == ">99999d");
  CHECK(FormatDuration(1e300) == ">99999d");
}

}  // namespace
}  // namespace mrtrain
