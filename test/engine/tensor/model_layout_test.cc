#include "engine/tensor/model_layout.h"

#include <cmath>
#include <memory>
#include <vector>

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

TEST_CASE("a row-sparse tensor is keyed by row, never enumerated nor counted", "[engine]") {
  TensorSpec w{"w", {int64_t{1} << 40, 9}, TensorSpec::Role::kWeight, /*row_sparse=*/true};
  auto layout = ModelLayout::Create({w, TensorSpec{"b", {1}, TensorSpec::Role::kBias}}, 4);
  REQUIRE(layout.ok());
  CHECK(layout->has_row_sparse());
  CHECK(layout->is_row_sparse(0));
  CHECK_FALSE(layout->is_row_sparse(1));
  CHECK(layout->num_parameters() == 1);
  CHECK(layout->keys() == std::vector<ParamKey>{ParamKey(1, 0)});
  CHECK(layout->num_blocks(0) == int64_t{1} << 40);
  CHECK(layout->max_key_length() == 9);
  const ParamKey row(0, (uint64_t{1} << 40) - 1);
  CHECK(layout->IsValid(row));
  CHECK_FALSE(layout->IsValid(ParamKey(0, uint64_t{1} << 40)));
  const BlockRange r = layout->Range(row);
  CHECK(r.tensor == 0);
  CHECK(r.offset == ((int64_t{1} << 40) - 1) * 9);
  CHECK(r.length == 9);
  CHECK(layout->DescribeKey(row) == "tensor \"w\" (id 0) row 1099511627775");
  CHECK(layout->DescribeKey(ParamKey(1, 0)) == "tensor \"b\" (id 1) block 0");

  // Limits on rows and dim, named.
  w.shape = {(int64_t{1} << 48) + 1, 1};
  CHECK(ModelLayout::Create({w}, 4).status().message() ==
        "row-sparse tensor 'w' has 281474976710657 rows, over the limit of 2^48");
  w.shape = {10, kMaxRowDim + 1};
  CHECK(ModelLayout::Create({w}, 4).status().message() ==
        "row-sparse tensor 'w' has rows of 16385 floats, over the limit of 16384");
  w.shape = {10};
  CHECK(ModelLayout::Create({w}, 4).status().message() ==
        "row-sparse tensor 'w' must have shape [rows, dim] with both positive");
}

TEST_CASE("a row's initial value depends only on seed, tensor and row", "[engine]") {
  const TensorSpec v{"v", {int64_t{1} << 30, 4}, TensorSpec::Role::kWeight, true};
  const RowInit init{InitScheme::kUniform, 0.1f, 7};
  float a[4], b[4], c[4], d[4];
  InitialRow(init, 2, v, 12345, a);
  InitialRow(init, 2, v, 12345, b);
  InitialRow(init, 2, v, 12346, c);
  InitialRow(RowInit{InitScheme::kUniform, 0.1f, 8}, 2, v, 12345, d);
  for (int i = 0; i < 4; ++i) {
    CHECK(a[i] == b[i]);
    CHECK(std::abs(a[i]) <= 0.1f);
  }
  CHECK(std::vector<float>(a, a + 4) != std::vector<float>(c, c + 4));
  CHECK(std::vector<float>(a, a + 4) != std::vector<float>(d, d + 4));
  InitialRow(RowInit{}, 2, v, 12345, a);  // zeros, the default
  CHECK(std::vector<float>(a, a + 4) == std::vector<float>(4, 0.0f));
  // A whole-model state holds nothing of a row-sparse tensor.
  auto layout = std::make_shared<const ModelLayout>(*ModelLayout::Create({v}, 8));
  const ModelState state = ModelState::Zeros(layout, 2);
  CHECK(state.tensors[0].empty());
  CHECK(state.slots[1][0].empty());
  CHECK(state.View().tensors[0] == nullptr);
}

}  // namespace
}  // namespace mrtrain
