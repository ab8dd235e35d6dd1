#include "engine/updaters/adam.h"

#include <cmath>
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

TEST_CASE("adam corrects the moments' bias over two steps", "[engine]") {
  AdamReducer rule(AdamOptions{});
  CHECK(rule.NumSlots() == 2);
  std::vector<float> w = {1.0f, 2.0f};
  std::vector<float> m = {0.0f, 0.0f};
  std::vector<float> v = {0.0f, 0.0f};
  float* slots[] = {m.data(), v.data()};

  const std::vector<float> g1 = {0.5f, -2.0f};
  rule.Update(Context(1), g1.data(), w.data(), slots, 2);
  CHECK(m[0] == Approx(0.05));
  CHECK(v[0] == Approx(0.00025));
  CHECK(m[1] == Approx(-0.2));
  CHECK(v[1] == Approx(0.004));
  // The corrected first step is lr * sign(g), whatever the gradient's size.
  CHECK(w[0] == Approx(0.9));
  CHECK(w[1] == Approx(2.1));

  const std::vector<float> g2 = {1.0f, 0.0f};
  rule.Update(Context(2), g2.data(), w.data(), slots, 2);
  CHECK(m[0] == Approx(0.145));
  CHECK(v[0] == Approx(0.00124975));
  CHECK(m[1] == Approx(-0.18));
  CHECK(v[1] == Approx(0.003996));
  // 0.9 - 0.1 * (0.145 / 0.19) / (sqrt(0.00124975 / 0.001999) + 1e-8)
  CHECK(w[0] == Approx(0.8034818006));
  CHECK(w[1] == Approx(2.1670058244));  // keeps moving on its first moment
}

TEST_CASE("adam uses the configured betas and epsilon", "[engine]") {
  AdamReducer rule(AdamOptions{0.5, 0.75, 0.5});
  std::vector<float> w = {0.0f};
  std::vector<float> m = {0.0f};
  std::vector<float> v = {0.0f};
  float* slots[] = {m.data(), v.data()};
  const float g = 2.0f;
  rule.Update(Context(1), &g, w.data(), slots, 1);
  CHECK(m[0] == Approx(1.0));    // 0.5 * 2
  CHECK(v[0] == Approx(1.0));    // 0.25 * 4
  CHECK(w[0] == Approx(-0.08));  // -0.1 * 2 / (2 + 0.5)
}

TEST_CASE("adam gives each element the same result however a block is split", "[engine]") {
  // Vectorised bodies and scalar tails must agree, or parameters would depend on block size.
  AdamReducer rule(AdamOptions{});
  const int n = 37;
  std::vector<float> grad(n), w_whole(n), w_split(n);
  for (int i = 0; i < n; ++i) {
    grad[i] = std::sin(0.7f * static_cast<float>(i)) * static_cast<float>(i + 1);
    w_whole[i] = w_split[i] = std::cos(0.3f * static_cast<float>(i));
  }
  std::vector<float> m_whole(n), v_whole(n), m_split(n), v_split(n);
  for (int step = 1; step <= 3; ++step) {
    float* whole[] = {m_whole.data(), v_whole.data()};
    rule.Update(Context(step), grad.data(), w_whole.data(), whole, n);
    for (int start : {0, 5, 22}) {
      const int end = start == 0 ? 5 : start == 5 ? 22 : n;
      float* part[] = {m_split.data() + start, v_split.data() + start};
      rule.Update(Context(step), grad.data() + start, w_split.data() + start, part, end - start);
    }
  }
  CHECK(w_whole == w_split);
  CHECK(m_whole == m_split);
  CHECK(v_whole == v_split);
}

}  // namespace
}  // namespace mrtrain::updaters
