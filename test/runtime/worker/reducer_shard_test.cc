#include "runtime/worker/reducer_shard.h"

#include <cmath>

#include <catch2/catch.hpp>

#include "engine/updaters/registry.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;

// Partitions 0 .. n-1 as leaves of the reduction tree.
std::vector<shuffle::TreeNode> Leaves(int64_t n) {
  std::vector<shuffle::TreeNode> nodes;
  for (int64_t p = 0; p < n; ++p) nodes.push_back(shuffle::TreeNode{p, 1});
  return nodes;
}

std::shared_ptr<const ModelLayout> Layout() {
  return std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"w", {6}}, TensorSpec{"b", {1}, TensorSpec::Role::kBias}}, 4)
          .value());
}

std::unique_ptr<ReducerShard> SgdShard(std::shared_ptr<const ModelLayout> layout,
                                       std::vector<ParamKey> keys) {
  auto rule = updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value();
  return std::make_unique<ReducerShard>(0, layout, std::move(keys), std::move(rule), 0.0f, 0.0f);
}

TEST_CASE("a shard applies the mean of the partitions' gradient sums", "[runtime]") {
  auto layout = Layout();
  auto shard = SgdShard(layout, layout->keys());
  ModelState state = ModelState::Zeros(layout, 0);
  state.tensors[0] = {1, 1, 1, 1, 1, 1};
  REQUIRE(shard->Restore(MakeShardFile(state, shard->keys(), 0, 0, 1, "")).ok());
  shuffle::Run p0, p1;
  std::vector<float> g0 = {2, 4, 6, 8}, g1 = {2, 0, 2, 0};
  p0.Append(ParamKey(0, 0), g0.data(), 4);
  p1.Append(ParamKey(0, 0), g1.data(), 4);
  RoundUpdate update{1, 0.5, 4.0, false};
  REQUIRE(shard->Reduce({&p0, nullptr, &p1}, Leaves(3), update).ok());
  shard->StoreTo(&state);
  // w -= 0.5 * (g0 + g1) / 4
  CHECK(state.tensors[0] == std::vector<float>{0.5f, 0.5f, 0.0f, 0.0f, 1, 1});
  float block[4];
  REQUIRE(shard->ReadBlock(ParamKey(0, 0), block).ok());
  CHECK(block[0] == 0.5f);
}

TEST_CASE("a shard refuses keys it does not own and wrong lengths, untouched", "[runtime]") {
  auto layout = Layout();
  auto shard = SgdShard(layout, {ParamKey(0, 0)});
  ModelState state = ModelState::Zeros(layout, 0);
  REQUIRE(shard->Restore(MakeShardFile(state, shard->keys(), 0, 0, 1, "")).ok());
  shuffle::Run good, foreign, short_block;
  std::vector<float> g = {1, 1, 1, 1};
  good.Append(ParamKey(0, 0), g.data(), 4);
  foreign.Append(ParamKey(0, 1), g.data(), 2);
  short_block.Append(ParamKey(0, 0), g.data(), 3);
  Status s = shard->Reduce({&good, &foreign}, {{0, 1}, {1, 1}}, RoundUpdate{1, 1.0, 1.0, false});
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message() ==
        "shard 0: the run of partitions [1, 2) has key (tensor 0, block 1) that this shard does "
        "not own or with a wrong length");
  CHECK(shard->Reduce({&short_block}, Leaves(1), RoundUpdate{1, 1.0, 1.0, false}).code() ==
        StatusCode::kCorruption);
  float block[4];
  REQUIRE(shard->ReadBlock(ParamKey(0, 0), block).ok());
  CHECK(block[0] == 0.0f);  // the good run was not applied either
  CHECK(shard->ReadBlock(ParamKey(0, 1), block).code() == StatusCode::kNotFound);
}

TEST_CASE("an update that makes a parameter non-finite fails naming step, tensor and element",
          "[runtime]") {
  auto layout = Layout();
  auto shard = SgdShard(layout, layout->keys());
  ModelState state = ModelState::Zeros(layout, 0);
  REQUIRE(shard->Restore(MakeShardFile(state, shard->keys(), 0, 0, 1, "")).ok());
  shuffle::Run run;
  // Block 1 of "w" holds elements 4 and 5; 1e38 * 10 overflows the float in element 5 only.
  std::vector<float> g = {0, 10};
  run.Append(ParamKey(0, 1), g.data(), 2);
  Status s = shard->Reduce({&run}, Leaves(1), RoundUpdate{3, 1e38, 1.0, false});
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message() ==
        "shard 0: update step 3 made tensor \"w\" (id 0) element 5 -inf (learning rate 1e+38); "
        "training diverged: lower update.learning_rate, or check the data for huge values");
  // A NaN gradient (0 * inf upstream) is caught the same way.
  std::vector<float> nan = {std::nanf(""), 0};
  shuffle::Run nan_run;
  nan_run.Append(ParamKey(0, 1), nan.data(), 2);
  auto fresh = SgdShard(layout, layout->keys());
  REQUIRE(fresh->Restore(MakeShardFile(state, fresh->keys(), 0, 0, 1, "")).ok());
  Status n = fresh->Reduce({&nan_run}, Leaves(1), RoundUpdate{1, 0.1, 1.0, false});
  CHECK(n.code() == StatusCode::kFailedPrecondition);
  CHECK(n.message().find("element 4 ") != std::string::npos);
  CHECK(n.message().find("nan (learning rate 0.1)") != std::string::npos);
}

TEST_CASE("slots round-trip through Restore and StoreTo", "[runtime]") {
  auto layout = Layout();
  auto rule = updaters::CreateBuiltinReducer("adam", api::Hyperparameters()).value();
  ReducerShard shard(0, layout, layout->keys(), std::move(rule), 0, 0);
  ModelState state = ModelState::Zeros(layout, 2);
  REQUIRE(shard.Restore(MakeShardFile(state, shard.keys(), 0, 0, 1, "")).ok());
  shuffle::Run run;
  std::vector<float> g = {1, -1, 1, -1};
  run.Append(ParamKey(0, 0), g.data(), 4);
  REQUIRE(shard.Reduce({&run}, Leaves(1), RoundUpdate{1, 0.1, 1.0, false}).ok());
  ModelState out = ModelState::Zeros(layout, 2);
  shard.StoreTo(&out);
  CHECK(out.slots[0][0][0] == Approx(0.1f));    // m = (1 - beta1) * g
  CHECK(out.slots[1][0][0] == Approx(0.001f));  // v = (1 - beta2) * g^2
  CHECK(out.tensors[0][0] == Approx(-0.1f));    // Adam's first step is lr * sign(g)
  CHECK(out.tensors[0][4] == 0.0f);             // block 1 got no gradient: unchanged
}

}  // namespace
}  // namespace mrtrain::runtime
