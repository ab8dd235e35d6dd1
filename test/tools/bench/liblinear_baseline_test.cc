#include "tools/bench/liblinear_baseline.h"

#include <catch2/catch.hpp>

namespace mrtrain::bench {
namespace {

TEST_CASE("ParseLiblinearAccuracy reads liblinear-predict's line as a fraction") {
  REQUIRE(ParseLiblinearAccuracy("Accuracy = 66.563% (66563/100000)\n") == Approx(0.66563));
  REQUIRE(ParseLiblinearAccuracy("Accuracy = 100% (5/5)\n") == Approx(1.0));
}

TEST_CASE("ParseLiblinearAccuracy is nothing without an accuracy line") {
  REQUIRE_FALSE(ParseLiblinearAccuracy(""));
  REQUIRE_FALSE(ParseLiblinearAccuracy("can't open input file test.svm\n"));
  REQUIRE_FALSE(ParseLiblinearAccuracy("Mean squared error = 0.25 (regression)\n"));
  REQUIRE_FALSE(ParseLiblinearAccuracy("Accuracy = abc%\n"));
}

}  // namespace
}  // namespace mrtrain::bench
