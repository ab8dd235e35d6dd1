#include "engine/updaters/schedule.h"

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

using Kind = LearningRateSchedule::Kind;

TEST_CASE("constant schedule keeps the base rate", "[engine]") {
  LearningRateSchedule schedule;
  schedule.base = 0.05;
  CHECK(LearningRateAt(schedule, 0, 0, 10, 5) == 0.05);
  CHECK(LearningRateAt(schedule, 4, 9, 10, 5) == 0.05);
}

TEST_CASE("step schedule drops by gamma at each step boundary", "[engine]") {
  LearningRateSchedule schedule;
  schedule.kind = Kind::kStep;
  schedule.base = 1.0;
  schedule.step_epochs = 3;
  schedule.gamma = 0.5;
  CHECK(LearningRateAt(schedule, 0, 0, 4, 10) == 1.0);
  CHECK(LearningRateAt(schedule, 2, 3, 4, 10) == 1.0);  // last round before the boundary
  CHECK(LearningRateAt(schedule, 3, 0, 4, 10) == 0.5);
  CHECK(LearningRateAt(schedule, 5, 3, 4, 10) == 0.5);
  CHECK(LearningRateAt(schedule, 6, 0, 4, 10) == 0.25);
  CHECK(LearningRateAt(schedule, 9, 0, 4, 10) == 0.125);

  schedule.step_epochs = 0;  // never drops rather than dividing by zero
  CHECK(LearningRateAt(schedule, 9, 0, 4, 10) == 1.0);
}

TEST_CASE("cosine schedule runs from base to min over the job's rounds", "[engine]") {
  LearningRateSchedule schedule;
  schedule.kind = Kind::kCosine;
  schedule.base = 1.0;
  schedule.min_lr = 0.1;
  // 10 epochs of 4 rounds: T = 40.
  CHECK(LearningRateAt(schedule, 0, 0, 4, 10) == Approx(1.0));           // start
  CHECK(LearningRateAt(schedule, 2, 2, 4, 10) == Approx(0.8681980515));  // t = 10: a quarter
  CHECK(LearningRateAt(schedule, 2, 0, 4, 10) == Approx(0.1 + 0.45 * (1 + 0.8090169944)));
  CHECK(LearningRateAt(schedule, 5, 0, 4, 10) == Approx(0.55));  // middle
  CHECK(LearningRateAt(schedule, 10, 0, 4, 10) == Approx(0.1));  // end
  CHECK(LearningRateAt(schedule, 12, 3, 4, 10) == Approx(0.1));  // past the end: stays
  CHECK(LearningRateAt(schedule, 0, 0, 0, 10) == 1.0);           // no rounds: base
}

}  // namespace
}  // namespace mrtrain::updaters
