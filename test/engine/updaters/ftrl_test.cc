#include "engine/updaters/ftrl.h"

#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

const api::TensorSpec kWeight{"w", {4}, api::TensorSpec::Role::kWeight};
const api::TensorSpec kBias{"b", {1}, api::TensorSpec::Role::kBias};

api::UpdateContext Context(int64_t step, const api::TensorSpec* spec) {
  api::UpdateContext ctx;
  ctx.step = step;
  ctx.learning_rate = 0.1;  // alpha
  ctx.spec = spec;
  return ctx;
}

// alpha 0.1, beta 1, l1 0.5, l2 0.2; the per-coordinate denominator is (beta + sqrt(n)) / alpha
// + l2 = 10 (1 + sqrt(n)) + 0.2.
TEST_CASE("ftrl matches a step computed by hand, one weight crossing the l1 threshold",
          "[engine]") {
  FtrlReducer rule(FtrlOptions{/*beta=*/1.0, /*l1=*/0.5, /*l2=*/0.2});
  CHECK(rule.NumSlots() == 2);
  std::vector<float> w = {0.0f, 0.0f, 0.0f, 0.4f};
  std::vector<float> z(4, 0.0f);
  std::vector<float> n(4, 0.0f);
  float* slots[] = {z.data(), n.data()};

  const std::vector<float> g1 = {2.0f, -0.3f, 0.0f, 1.0f};
  rule.Update(Context(1, &kWeight), g1.data(), w.data(), slots, 4);
  // 0: n = 4, sigma = (2 - 0) / 0.1 = 20, z = 2 - 20 * 0 = 2 > l1:
  //    w = -(2 - 0.5) / (10 * 3 + 0.2) = -1.5 / 30.2.
  CHECK(n[0] == 4.0f);
  CHECK(z[0] == Approx(2.0));
  CHECK(w[0] == Approx(-1.5 / 30.2));
  // 1: z = -0.3, inside the threshold: exactly 0.
  CHECK(n[1] == Approx(0.09));
  CHECK(z[1] == Approx(-0.3));
  CHECK(w[1] == 0.0f);
  CHECK_FALSE(std::signbit(w[1]));
  // 2: no gradient, untouched.
  CHECK(w[2] == 0.0f);
  CHECK(z[2] == 0.0f);
  CHECK(n[2] == 0.0f);
  // 3: warm start from w = 0.4: z0 = -(0.4 * (1 / 0.1 + 0.2) + 0.5) = -4.58, then n = 1,
  //    sigma = 10, z = -4.58 + 1 - 10 * 0.4 = -7.58, w = (7.58 - 0.5) / (10 * 2 + 0.2).
  CHECK(n[3] == 1.0f);
  CHECK(z[3] == Approx(-7.58));
  CHECK(w[3] == Approx(7.08 / 20.2));

  const std::vector<float> g2 = {-2.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> before = w;
  rule.Update(Context(2, &kWeight), g2.data(), w.data(), slots, 4);
  // 0: n = 8, sigma = (sqrt(8) - 2) / 0.1, z = 2 + (-2 - sigma * w) = 0.41147 <= l1: the
  //    weight crosses the threshold and is exactly +0.0.
  const double sigma = (std::sqrt(8.0) - 2.0) / 0.1;
  CHECK(n[0] == 8.0f);
  CHECK(z[0] == Approx(2.0 - 2.0 + sigma * 1.5 / 30.2));
  CHECK(z[0] == Approx(0.41147).epsilon(1e-4));
  CHECK(w[0] == 0.0f);
  CHECK_FALSE(std::signbit(w[0]));
  // The others had no gradient: same bytes.
  for (int i = 1; i < 4; ++i) CHECK(w[i] == before[i]);
  CHECK(z[3] == Approx(-7.58));
}

TEST_CASE("ftrl without l1 and l2 on zero init is the paper's per-coordinate rate", "[engine]") {
  FtrlReducer rule(FtrlOptions{/*beta=*/0.5, /*l1=*/0, /*l2=*/0});
  std::vector<float> w = {0.0f};
  std::vector<float> z = {0.0f};
  std::vector<float> n = {0.0f};
  float* slots[] = {z.data(), n.data()};
  const float g = 0.6f;
  rule.Update(Context(1, &kWeight), &g, w.data(), slots, 1);
  // w = -z * alpha / (beta + sqrt(n)) = -0.6 * 0.1 / (0.5 + 0.6).
  CHECK(w[0] == Approx(-0.06 / 1.1));
  rule.Update(Context(2, &kWeight), &g, w.data(), slots, 1);
  // n = 0.72; z = 0.6 + 0.6 - (sqrt(0.72) - 0.6) / 0.1 * w1.
  const double w1 = -0.06 / 1.1;
  const double z2 = 1.2 - (std::sqrt(0.72) - 0.6) / 0.1 * w1;
  CHECK(z[0] == Approx(z2));
  CHECK(w[0] == Approx(-z2 * 0.1 / (0.5 + std::sqrt(0.72))));
}

TEST_CASE("ftrl leaves l1 and l2 off for biases", "[engine]") {
  FtrlReducer rule(FtrlOptions{/*beta=*/1.0, /*l1=*/5.0, /*l2=*/3.0});
  float b = 0.0f;
  float z = 0.0f;
  float n = 0.0f;
  float* slots[] = {&z, &n};
  const float g = 2.0f;
  rule.Update(Context(1, &kBias), &g, &b, slots, 1);
  // z = 2 would be inside l1 = 5 for a weight; for the bias w = -2 / (10 * (1 + 2)).
  CHECK(b == Approx(-2.0 / 30.0));
}

TEST_CASE("ftrl keeps an initialised weight that gets no gradient, bit for bit", "[engine]") {
  FtrlReducer rule(FtrlOptions{1.0, 0.5, 0.2});
  std::vector<float> w = {0.123f, -0.7f};
  std::vector<float> z(2, 0.0f);
  std::vector<float> n(2, 0.0f);
  float* slots[] = {z.data(), n.data()};
  const std::vector<float> zero(2, 0.0f);
  for (int step = 1; step <= 3; ++step)
    rule.Update(Context(step, &kWeight), zero.data(), w.data(), slots, 2);
  CHECK(w == std::vector<float>{0.123f, -0.7f});
  CHECK(z == std::vector<float>{0.0f, 0.0f});
  CHECK(n == std::vector<float>{0.0f, 0.0f});
}

}  // namespace
}  // namespace mrtrain::updaters
