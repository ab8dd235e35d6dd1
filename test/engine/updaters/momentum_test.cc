#include "engine/updaters/momentum.h"

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

TEST_CASE("momentum accumulates velocity over two steps", "[engine]") {
  MomentumReducer rule(MomentumOptions{0.9});
  CHECK(rule.NumSlots() == 1);
  std::vector<float> w = {1.0f, 2.0f};
  std::vector<float> v = {0.0f, 0.0f};
  float* slots[] = {v.data()};

  const std::vector<float> g1 = {0.5f, -1.0f};
  rule.Update(Context(1), g1.data(), w.data(), slots, 2);
  CHECK(v[0] == Approx(0.5));
  CHECK(v[1] == Approx(-1.0));
  CHECK(w[0] == Approx(0.95));  // 1 - 0.1 * 0.5
  CHECK(w[1] == Approx(2.1));

  const std::vector<float> g2 = {1.0f, 0.0f};
  rule.Update(Context(2), g2.data(), w.data(), slots, 2);
  CHECK(v[0] == Approx(1.45));  // 0.9 * 0.5 + 1
  CHECK(v[1] == Approx(-0.9));  // the velocity keeps moving with no gradient
  CHECK(w[0] == Approx(0.805));
  CHECK(w[1] == Approx(2.19));
}

TEST_CASE("nesterov steps along the gradient plus the decayed new velocity", "[engine]") {
  NesterovReducer rule(MomentumOptions{0.9});
  CHECK(rule.NumSlots() == 1);
  std::vector<float> w = {1.0f};
  std::vector<float> v = {0.0f};
  float* slots[] = {v.data()};

  const float g1 = 0.5f;
  rule.Update(Context(1), &g1, w.data(), slots, 1);
  CHECK(v[0] == Approx(0.5));
  CHECK(w[0] == Approx(0.905));  // 1 - 0.1 * (0.5 + 0.9 * 0.5)

  const float g2 = 1.0f;
  rule.Update(Context(2), &g2, w.data(), slots, 1);
  CHECK(v[0] == Approx(1.45));
  CHECK(w[0] == Approx(0.6745));  // 0.905 - 0.1 * (1 + 0.9 * 1.45)
}

TEST_CASE("momentum zero behaves as plain sgd", "[engine]") {
  MomentumReducer rule(MomentumOptions{0.0});
  std::vector<float> w = {1.0f};
  std::vector<float> v = {0.0f};
  float* slots[] = {v.data()};
  const float g = 0.5f;
  rule.Update(Context(1), &g, w.data(), slots, 1);
  rule.Update(Context(2), &g, w.data(), slots, 1);
  CHECK(w[0] == Approx(0.9));
}

}  // namespace
}  // namespace mrtrain::updaters
