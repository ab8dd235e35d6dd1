#include "engine/tensor/model_layout.h"

#include <catch2/catch.hpp>

#include "engine/tensor/model_state.h"

namespace mrtrain {
namespace {

using api::TensorSpec;

TEST_CASE("param keys pack tensor and block and sort by tensor then block", "[engine]") {
  ParamKey k(3, 12345);
  CHECK(k.tensor() == 3);
  CHECK(k.block() == 12345);
  CHECK(ParamKey::FromPacked(k.packed()) == k);
  CHECK(ParamKey(1, ParamKey::kMaxBlocks - 1) < ParamKey(2, 0));
  CHECK(ParamKey(65535, 7).tensor() == 65535);
}

TEST_CASE("layout cuts tensors into blocks with a short last block", "[engine]") {
  auto layout = ModelLayout::Create({TensorSpec{"W", {10, 7}, TensorSpec::Role::kWeight},
                                     TensorSpec{"b", {7}, TensorSpec::Role::kBias}},
                                    32);
  REQUIRE(layout.ok());
  CHECK(layout->num_parameters() == 77);
  CHECK(layout->num_blocks(0) == 3);  // 70 floats: 32 + 32 + 6
  CHECK(layout->num_blocks(1) == 1);
  REQUIRE(layout->keys().size() == 4);
  BlockRange last = layout->Range(ParamKey(0, 2));
  CHECK(last.offset == 64);
  CHECK(last.length == 6);
  CHECK(layout->Range(ParamKey(1, 0)).length == 7);
  CHECK_FALSE(layout->IsValid(ParamKey(0, 3)));
  CHECK_FALSE(layout->IsValid(ParamKey(2, 0)));
  CHECK(layout->FindTensor("b") == 1);
}

TEST_CASE("layout rejects duplicate names and bad shapes with the tensor named", "[engine]") {
  auto dup = ModelLayout::Create({TensorSpec{"W", {2}}, TensorSpec{"W", {3}}}, 8);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().message().find("'W'") != std::string::npos);
  auto zero = ModelLayout::Create({TensorSpec{"X", {2, 0}}}, 8);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.status().message().find("'X'") != std::string::npos);
  CHECK_FALSE(ModelLayout::Create({TensorSpec{"X", {2}}}, 0).ok());
}

TEST_CASE("layout refuses a model past kMaxModelParams before anything is allocated", "[engine]") {
  // A wide libsvm file under softmax: 2^31 features x 10 classes, and a product that would
  // overflow int64 if multiplied out.
  auto wide =
      ModelLayout::Create({TensorSpec{"b", {10}, TensorSpec::Role::kBias},
                           TensorSpec{"W", {int64_t{1} << 31, 10}, TensorSpec::Role::kWeight}},
                          16384);
  REQUIRE_FALSE(wide.ok());
  CHECK(wide.status().message() ==
        "tensor 'W' of shape [2147483648, 10] takes the model past 268435456 parameters (1 GiB "
        "of float32), the limit");
  auto huge = ModelLayout::Create(
      {TensorSpec{"W", {int64_t{1} << 40, int64_t{1} << 40}, TensorSpec::Role::kWeight}}, 16384);
  CHECK_FALSE(huge.ok());
  // Exactly at the limit is allowed, one more is not.
  auto at = ModelLayout::Create({TensorSpec{"W", {kMaxModelParams}, TensorSpec::Role::kWeight}},
                                int64_t{1} << 30);
  CHECK(at.ok());
  auto past =
      ModelLayout::Create({TensorSpec{"W", {kMaxModelParams - 1}, TensorSpec::Role::kWeight},
                           TensorSpec{"b", {2}, TensorSpec::Role::kBias}},
                          int64_t{1} << 30);
  CHECK_FALSE(past.ok());
}

TEST_CASE("initialisers are seeded, bounded and leave biases at zero", "[engine]") {
  auto layout = std::make_shared<ModelLayout>(
      ModelLayout::Create(
          {TensorSpec{"W", {100, 50}}, TensorSpec{"b", {50}, TensorSpec::Role::kBias}}, 64)
          .value());
  ModelState a = ModelState::Zeros(layout, 0), b = ModelState::Zeros(layout, 0),
             c = ModelState::Zeros(layout, 0);
  InitializeParameters(InitScheme::kXavier, 0, 7, &a);
  InitializeParameters(InitScheme::kXavier, 0, 7, &b);
  InitializeParameters(InitScheme::kXavier, 0, 8, &c);
  CHECK(a.tensors == b.tensors);
  CHECK(a.tensors[0] != c.tensors[0]);
  const float limit = std::sqrt(6.0f / 150.0f);
  float max_abs = 0;
  for (float v : a.tensors[0]) max_abs = std::max(max_abs, std::abs(v));
  CHECK(max_abs <= limit);
  CHECK(max_abs > 0.9f * limit);  // 5000 draws reach near the bound
  for (float v : a.tensors[1]) CHECK(v == 0.0f);

  ModelState he = ModelState::Zeros(layout, 0);
  InitializeParameters(InitScheme::kHe, 0, 7, &he);
  max_abs = 0;
  for (float v : he.tensors[0]) max_abs = std::max(max_abs, std::abs(v));
  CHECK(max_abs <= std::sqrt(6.0f / 100.0f));
  CHECK(max_abs > limit);

  ModelState u = ModelState::Zeros(layout, 0);
  InitializeParameters(InitScheme::kUniform, 0.01f, 7, &u);
  for (float v : u.tensors[0]) CHECK(std::abs(v) <= 0.01f);
}

TEST_CASE("block reads and writes touch only their range", "[engine]") {
  auto layout =
      std::make_shared<ModelLayout>(ModelLayout::Create({TensorSpec{"W", {10}}}, 4).value());
  ModelState s = ModelState::Zeros(layout, 1);
  CHECK(s.slots.size() == 1);
  float in[2] = {1.5f, -2.5f};
  s.WriteBlock(ParamKey(0, 2), in);
  CHECK(s.tensors[0] == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 1.5f, -2.5f});
  float out[4] = {};
  s.ReadBlock(ParamKey(0, 2), out);
  CHECK(out[1] == -2.5f);
}

}  // namespace
}  // namespace mrtrain
