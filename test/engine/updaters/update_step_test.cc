#include "engine/updaters/update_step.h"

#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/updaters/average.h"
#include "engine/updaters/momentum.h"
#include "engine/updaters/sgd.h"

namespace mrtrain::updaters {
namespace {

using api::TensorSpec;

const TensorSpec kWeight{"W", {4}, TensorSpec::Role::kWeight};
const TensorSpec kBias{"b", {4}, TensorSpec::Role::kBias};

api::UpdateContext Context(const TensorSpec& spec, double learning_rate) {
  api::UpdateContext ctx;
  ctx.step = 1;
  ctx.learning_rate = learning_rate;
  ctx.spec = &spec;
  return ctx;
}

TEST_CASE("update divides the summed gradient by the example count", "[engine]") {
  SgdReducer sgd;
  std::vector<float> scratch;
  std::vector<float> w = {0.0f, 1.0f};
  const std::vector<float> grad_sum = {4.0f, -8.0f};
  ApplyUpdate(sgd, Context(kWeight, 1.0), grad_sum.data(), 4, 0, 0, w.data(), nullptr, 2, &scratch);
  CHECK(w[0] == -1.0f);
  CHECK(w[1] == 3.0f);
  CHECK(scratch.size() >= 2);
}

TEST_CASE("update adds l2 times the weight to weights' gradients only", "[engine]") {
  SgdReducer sgd;
  std::vector<float> scratch;
  const std::vector<float> grad_sum = {0.0f, 2.0f};

  SECTION("weights decay") {
    std::vector<float> w = {2.0f, 2.0f};
    ApplyUpdate(sgd, Context(kWeight, 0.1), grad_sum.data(), 2, 0, 0.5f, w.data(), nullptr, 2,
                &scratch);
    CHECK(w[0] == Approx(1.9));  // g = 0 + 0.5 * 2
    CHECK(w[1] == Approx(1.8));  // g = 1 + 0.5 * 2
  }
  SECTION("biases do not") {
    std::vector<float> b = {2.0f, 2.0f};
    ApplyUpdate(sgd, Context(kBias, 0.1), grad_sum.data(), 2, 0, 0.5f, b.data(), nullptr, 2,
                &scratch);
    CHECK(b[0] == 2.0f);
    CHECK(b[1] == Approx(1.9));
  }
}

TEST_CASE("update soft-thresholds weights by lr * l1 to exact zeros", "[engine]") {
  SgdReducer sgd;
  std::vector<float> scratch;
  const std::vector<float> grad_sum(4, 0.0f);

  SECTION("weights shrink and small ones become +0") {
    std::vector<float> w = {0.05f, -0.05f, 0.5f, -0.5f};
    ApplyUpdate(sgd, Context(kWeight, 0.1), grad_sum.data(), 1, 1.0f, 0, w.data(), nullptr, 4,
                &scratch);
    CHECK(w[0] == 0.0f);
    CHECK_FALSE(std::signbit(w[0]));
    CHECK(w[1] == 0.0f);
    CHECK_FALSE(std::signbit(w[1]));  // +0, not -0: same bytes whatever the old sign
    CHECK(w[2] == Approx(0.4));
    CHECK(w[3] == Approx(-0.4));
  }
  SECTION("zeros stay zero under repeated steps") {
    std::vector<float> w = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < 3; ++i) {
      ApplyUpdate(sgd, Context(kWeight, 0.1), grad_sum.data(), 1, 1.0f, 0, w.data(), nullptr, 4,
                  &scratch);
    }
    CHECK(w == std::vector<float>(4, 0.0f));
  }
  SECTION("biases are untouched") {
    std::vector<float> b = {0.05f, -0.05f, 0.5f, -0.5f};
    ApplyUpdate(sgd, Context(kBias, 0.1), grad_sum.data(), 1, 1.0f, 0, b.data(), nullptr, 4,
                &scratch);
    CHECK(b == std::vector<float>{0.05f, -0.05f, 0.5f, -0.5f});
  }
}

TEST_CASE("update thresholds after the rule's step", "[engine]") {
  SgdReducer sgd;
  std::vector<float> scratch;
  // Step, then threshold 0.1: {0.3, 0.02} -> {0.2, -0.08} -> {0.1, 0}. Thresholding first
  // would give {0.2, 0} -> {0.1, -0.1}: the order decides whether the weight ends at zero.
  std::vector<float> w = {0.3f, 0.02f};
  const std::vector<float> grad_sum = {1.0f, 1.0f};
  ApplyUpdate(sgd, Context(kWeight, 0.1), grad_sum.data(), 1, 1.0f, 0, w.data(), nullptr, 2,
              &scratch);
  CHECK(w[0] == Approx(0.1));
  CHECK(w[1] == 0.0f);
}

TEST_CASE("update with the average rule thresholds by lr times l1", "[engine]") {
  AverageReducer average;
  std::vector<float> scratch;
  std::vector<float> w = {1.0f, 0.08f};
  const std::vector<float> grad_sum = {0.5f, 0.0f};
  ApplyUpdate(average, Context(kWeight, 0.5), grad_sum.data(), 1, 0.1f, 0, w.data(), nullptr, 2,
              &scratch);
  CHECK(w[0] == Approx(0.7));   // 1 - 0.5 * 0.5, then - 0.05
  CHECK(w[1] == Approx(0.03));  // 0.08 - 0.05
}

TEST_CASE("update with no examples leaves params and slots untouched", "[engine]") {
  MomentumReducer momentum(MomentumOptions{0.9});
  std::vector<float> scratch;
  std::vector<float> w = {0.05f, 1.0f};
  std::vector<float> v = {1.0f, -1.0f};
  float* slots[] = {v.data()};
  const std::vector<float> grad_sum = {0.0f, 0.0f};
  ApplyUpdate(momentum, Context(kWeight, 0.1), grad_sum.data(), 0, 1.0f, 0.5f, w.data(), slots, 2,
              &scratch);
  CHECK(w == std::vector<float>{0.05f, 1.0f});
  CHECK(v == std::vector<float>{1.0f, -1.0f});
}

TEST_CASE("update passes the mean gradient and slots to the rule", "[engine]") {
  MomentumReducer momentum(MomentumOptions{0.9});
  std::vector<float> scratch(1, 0.0f);  // smaller than n: grown, not overrun
  std::vector<float> w = {1.0f, 1.0f, 1.0f};
  std::vector<float> v = {1.0f, 0.0f, 0.0f};
  float* slots[] = {v.data()};
  const std::vector<float> grad_sum = {2.0f, 4.0f, -2.0f};
  ApplyUpdate(momentum, Context(kWeight, 0.1), grad_sum.data(), 2, 0, 0, w.data(), slots, 3,
              &scratch);
  CHECK(v[0] == Approx(1.9));  // 0.9 * 1 + 2 / 2
  CHECK(v[1] == Approx(2.0));
  CHECK(v[2] == Approx(-1.0));
  CHECK(w[0] == Approx(0.81));
  CHECK(w[1] == Approx(0.8));
  CHECK(w[2] == Approx(1.1));
}

}  // namespace
}  // namespace mrtrain::updaters
