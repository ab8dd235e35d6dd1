#include "engine/updaters/adagrad.h"

#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

api::UpdateContext Context(int64_t step) {
  api::UpdateContext ctx;
  ctx.step = step;
  ctx.learning_rate = 0.1;
  return ctx;
}

TEST_CASE("adagrad divides by the root of the accumulator plus its initial value", "[engine]") {
  AdagradReducer rule(AdagradOptions{1e-10, 0.1});
  CHECK(rule.NumSlots() == 1);
  std::vector<float> w = {1.0f, -1.0f};
  std::vector<float> acc = {0.0f, 0.0f};
  float* slots[] = {acc.data()};

  const std::vector<float> g1 = {0.5f, -2.0f};
  rule.Update(Context(1), g1.data(), w.data(), slots, 2);
  CHECK(acc[0] == Approx(0.25));  // the slot holds the plain sum of squares
  CHECK(acc[1] == Approx(4.0));
  CHECK(w[0] == Approx(0.9154845745));  // 1 - 0.1 * 0.5 / sqrt(0.25 + 0.1)
  CHECK(w[1] == Approx(-0.9012270403));

  const std::vector<float> g2 = {1.0f, 0.0f};
  rule.Update(Context(2), g2.data(), w.data(), slots, 2);
  CHECK(acc[0] == Approx(1.25));
  CHECK(acc[1] == Approx(4.0));
  CHECK(w[0] == Approx(0.8294182780));   // - 0.1 * 1 / sqrt(1.25 + 0.1)
  CHECK(w[1] == Approx(-0.9012270403));  // a zero gradient does not move it
}

TEST_CASE("adagrad epsilon keeps a zero accumulator from dividing by zero", "[engine]") {
  AdagradReducer rule(AdagradOptions{1e-10, 0.0});
  std::vector<float> w = {1.0f};
  std::vector<float> acc = {0.0f};
  float* slots[] = {acc.data()};
  const float g = 0.0f;
  rule.Update(Context(1), &g, w.data(), slots, 1);
  CHECK(w[0] == 1.0f);
  CHECK(acc[0] == 0.0f);
}

}  // namespace
}  // namespace mrtrain::updaters
