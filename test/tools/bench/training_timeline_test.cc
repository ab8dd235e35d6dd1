#include "tools/bench/training_timeline.h"

#include <catch2/catch.hpp>

namespace mrtrain::bench {
namespace {

TEST_CASE("TimeToAccuracy is the first epoch at or above the target") {
  const std::vector<EpochPoint> epochs = {{2.5, 0.61}, {5.0, 0.665}, {7.5, 0.67}};
  REQUIRE(TimeToAccuracy(epochs, 0.665) == 5.0);
  REQUIRE(TimeToAccuracy(epochs, 0.6) == 2.5);
  REQUIRE(TimeToAccuracy(epochs, 0.669) == 7.5);
}

TEST_CASE("TimeToAccuracy is nothing when the target is never reached") {
  REQUIRE_FALSE(TimeToAccuracy({{1, 0.5}, {2, 0.6}}, 0.665));
  REQUIRE_FALSE(TimeToAccuracy({{1, std::nullopt}}, 0.1));
  REQUIRE_FALSE(TimeToAccuracy({}, 0.1));
}

TEST_CASE("TimeToAccuracy does not take a later dip for the crossing") {
  REQUIRE(TimeToAccuracy({{1, 0.7}, {2, 0.6}, {3, 0.7}}, 0.665) == 1);
}

TEST_CASE("MedianRoundSeconds leaves out the first round") {
  // Rounds of 10 (loading), 1, 3 and 2 seconds.
  REQUIRE(MedianRoundSeconds({10, 11, 14, 16}) == 2);
  REQUIRE(MedianRoundSeconds({10, 11.5}) == 1.5);
}

TEST_CASE("MedianRoundSeconds needs two rounds") {
  REQUIRE_FALSE(MedianRoundSeconds({10}));
  REQUIRE_FALSE(MedianRoundSeconds({}));
}

}  // namespace
}  // namespace mrtrain::bench
