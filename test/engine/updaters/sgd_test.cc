#include "engine/updaters/sgd.h"

#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

TEST_CASE("sgd steps against the gradient scaled by the learning rate", "[engine]") {
  SgdReducer rule;
  CHECK(rule.NumSlots() == 0);
  api::UpdateContext ctx;
  ctx.step = 1;
  ctx.learning_rate = 0.1;
  std::vector<float> w = {1.0f, -2.0f, 0.5f};
  const std::vector<float> g = {0.5f, -1.0f, 2.0f};
  rule.Update(ctx, g.data(), w.data(), nullptr, 3);
  CHECK(w[0] == Approx(0.95));
  CHECK(w[1] == Approx(-1.9));
  CHECK(w[2] == Approx(0.3));
}

}  // namespace
}  // namespace mrtrain::updaters
