#include "engine/updaters/average.h"

#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

TEST_CASE("average lands on the mean at rate 1 and part way below it", "[engine]") {
  AverageReducer rule;
  CHECK(rule.NumSlots() == 0);
  api::UpdateContext ctx;
  ctx.step = 3;
  ctx.learning_rate = 1.0;
  // Two workers moved w = 1 to 0.5 and 1.0: the mean delta is -0.25, the gradient +0.25.
  std::vector<float> w = {1.0f, -2.0f};
  const std::vector<float> g = {0.25f, -1.0f};
  rule.Update(ctx, g.data(), w.data(), nullptr, 2);
  CHECK(w[0] == 0.75f);
  CHECK(w[1] == -1.0f);
  ctx.learning_rate = 0.5;
  rule.Update(ctx, g.data(), w.data(), nullptr, 2);
  CHECK(w[0] == 0.625f);
  CHECK(w[1] == -0.5f);
}

}  // namespace
}  // namespace mrtrain::updaters
