// A reducer shard's rows of row-sparse tensors: created on first update at their initial value,
// updated only when a round touches them (SGD, AdaGrad, Adam, FTRL against hand-computed
// steps), served to pulls, and stored sorted for checkpoints.
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/updaters/registry.h"
#include "runtime/worker/reducer_shard.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;

constexpr int64_t kRows = int64_t{1} << 30;  // nothing of this size may be allocated

std::shared_ptr<const ModelLayout> Layout() {
  return std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"w", {kRows, 2}, TensorSpec::Role::kWeight, true},
                           TensorSpec{"b", {1}, TensorSpec::Role::kBias}},
                          4)
          .value());
}

std::unique_ptr<ReducerShard> Shard(const std::string& rule_name, api::Hyperparameters params,
                                    float l2 = 0, RowInit init = {},
                                    std::shared_ptr<const shuffle::Partitioner> partitioner = {},
                                    int shard_id = 0) {
  auto layout = Layout();
  auto rule = updaters::CreateBuiltinReducer(rule_name, params).value();
  auto shard = std::make_unique<ReducerShard>(shard_id, layout, layout->keys(), std::move(rule),
                                              0.0f, l2, init, std::move(partitioner));
  return shard;
}

// One round whose gradient sum (over `examples` examples) is `grads[i]` for row rows[i] of w.
Status Round(ReducerShard& shard, int64_t step, double lr, double examples,
             const std::vector<int64_t>& rows, const std::vector<std::vector<float>>& grads) {
  shuffle::Run run;
  for (size_t i = 0; i < rows.size(); ++i) {
    run.Append(ParamKey(0, static_cast<uint64_t>(rows[i])), grads[i].data(), 2);
  }
  return shard.Reduce({&run}, {shuffle::TreeNode{0, 1}}, RoundUpdate{step, lr, examples, false});
}

std::vector<float> RowOf(const ReducerShard& shard, int64_t row) {
  const shuffle::Run run = shard.RowsRun({ParamKey(0, static_cast<uint64_t>(row))}).value();
  return run.values;
}

TEST_CASE("SGD with L2 creates a row at its initial value and updates only touched rows",
          "[runtime]") {
  const RowInit init{InitScheme::kUniform, 0.5f, 3};
  auto shard = Shard("sgd", {}, /*l2=*/0.1f, init);
  float w0[2];
  InitialRow(init, 0, Layout()->specs()[0], 7, w0);
  CHECK(RowOf(*shard, 7) == std::vector<float>{w0[0], w0[1]});  // a pull stores nothing
  CHECK(shard->num_rows_held() == 0);
  REQUIRE(Round(*shard, 1, 0.5, 2, {7}, {{2, -4}}).ok());
  CHECK(shard->num_rows_held() == 1);
  // w -= lr * (g / examples + l2 * w)
  const std::vector<float> w1 = RowOf(*shard, 7);
  CHECK(w1[0] == Approx(w0[0] - 0.5 * (1.0 + 0.1 * w0[0])).epsilon(1e-6));
  CHECK(w1[1] == Approx(w0[1] - 0.5 * (-2.0 + 0.1 * w0[1])).epsilon(1e-6));
  // Row 9 untouched: no L2 shrinkage, not held.
  float w9[2];
  InitialRow(init, 0, Layout()->specs()[0], 9, w9);
  CHECK(RowOf(*shard, 9) == std::vector<float>{w9[0], w9[1]});
  REQUIRE(Round(*shard, 2, 0.5, 2, {kRows - 1}, {{0, 0}}).ok());
  CHECK(RowOf(*shard, 7) == w1);  // untouched this round: unchanged
  CHECK(shard->StateKeys() ==
        std::vector<ParamKey>{ParamKey(0, 7), ParamKey(0, kRows - 1), ParamKey(1, 0)});
}

TEST_CASE("AdaGrad on rows: a row's accumulator moves only when the row is touched", "[runtime]") {
  auto shard = Shard(
      "adagrad", api::Hyperparameters(std::map<std::string, std::string>{{"epsilon", "1e-10"}}));
  REQUIRE(Round(*shard, 1, 0.1, 1, {5}, {{1, -2}}).ok());
  // G = g^2; w -= lr * g / sqrt(G + 0.1), 0.1 the default initial accumulator.
  CHECK(RowOf(*shard, 5)[0] == Approx(-0.1 / std::sqrt(1.1)));
  CHECK(RowOf(*shard, 5)[1] == Approx(0.2 / std::sqrt(4.1)));
  REQUIRE(Round(*shard, 2, 0.1, 1, {6}, {{3, 3}}).ok());
  REQUIRE(Round(*shard, 3, 0.1, 1, {5}, {{1, 0}}).ok());
  // G = {2, 4}: w0 -= 0.1 / sqrt(2.1); w1 unchanged by a zero gradient.
  CHECK(RowOf(*shard, 5)[0] == Approx(-0.1 / std::sqrt(1.1) - 0.1 / std::sqrt(2.1)).epsilon(1e-6));
  CHECK(RowOf(*shard, 5)[1] == Approx(0.2 / std::sqrt(4.1)));
}

TEST_CASE("Adam on rows is lazy: untouched rows' moments do not decay, t is the global step",
          "[runtime]") {
  auto shard = Shard(
      "adam", api::Hyperparameters({{"beta1", "0.9"}, {"beta2", "0.999"}, {"epsilon", "1e-8"}}));
  REQUIRE(Round(*shard, 1, 0.01, 1, {4}, {{2, 0}}).ok());
  // t = 1: m = 0.2, v = 0.004; mhat = 2, vhat = 4: w = -0.01 * 2 / (2 + 1e-8).
  CHECK(RowOf(*shard, 4)[0] == Approx(-0.01).epsilon(1e-5));
  CHECK(RowOf(*shard, 4)[1] == 0.0f);
  REQUIRE(Round(*shard, 2, 0.01, 1, {8}, {{1, 1}}).ok());
  REQUIRE(Round(*shard, 3, 0.01, 1, {4}, {{2, 0}}).ok());
  // Row 4's moments skipped step 2 (no decay): m = 0.9 * 0.2 + 0.2 = 0.38,
  // v = 0.999 * 0.004 + 0.004 = 0.007996; at t = 3: mhat = m / (1 - 0.9^3),
  // vhat = v / (1 - 0.999^3).
  const double mhat = 0.38 / (1 - std::pow(0.9, 3));
  const double vhat = 0.007996 / (1 - std::pow(0.999, 3));
  CHECK(RowOf(*shard, 4)[0] ==
        Approx(-0.01 - 0.01 * mhat / (std::sqrt(vhat) + 1e-8)).epsilon(1e-5));
}

TEST_CASE("FTRL on rows matches the closed form, untouched rows keep z and n", "[runtime]") {
  auto shard = Shard("ftrl", api::Hyperparameters(std::map<std::string, std::string>{
                                 {"beta", "1"}, {"l1", "0.5"}, {"l2", "0"}}));
  REQUIRE(Round(*shard, 1, 0.1, 1, {3}, {{2, 0.25}}).ok());
  // From w = 0, n = 0: sigma = |g| / alpha, z = g - sigma * 0 = g, n = g^2.
  // w = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2); |z| <= l1 gives 0.
  CHECK(RowOf(*shard, 3)[0] == Approx(-(2 - 0.5) / ((1 + 2) / 0.1)));
  CHECK(RowOf(*shard, 3)[1] == 0.0f);
  const float w = RowOf(*shard, 3)[0];
  REQUIRE(Round(*shard, 2, 0.1, 1, {11}, {{1, 1}}).ok());
  CHECK(RowOf(*shard, 3)[0] == w);
  REQUIRE(Round(*shard, 3, 0.1, 1, {3}, {{1, 0}}).ok());
  // sigma = (sqrt(5) - 2) / 0.1; z = 2 + 1 - sigma * w; n = 5.
  const double sigma = (std::sqrt(5.0) - 2) / 0.1;
  const double z = 3 - sigma * w;
  CHECK(RowOf(*shard, 3)[0] == Approx(-(z - 0.5) / ((1 + std::sqrt(5.0)) / 0.1)).epsilon(1e-5));
}

TEST_CASE("a shard owns the rows its partitioner gives it, refusing others by name", "[runtime]") {
  auto layout = Layout();
  std::shared_ptr<const shuffle::Partitioner> partitioner =
      shuffle::MakePartitioner(shuffle::ShuffleMode::kSort, *layout, 2);
  auto shard = Shard("sgd", {}, 0, {}, partitioner, /*shard_id=*/0);
  // Range partitioner: rows [0, 2^29) on shard 0, the rest on shard 1.
  CHECK(partitioner->ShardOf(ParamKey(0, (uint64_t{1} << 29) - 1)) == 0);
  CHECK(partitioner->ShardOf(ParamKey(0, uint64_t{1} << 29)) == 1);
  CHECK(shard->RowsRun({ParamKey(0, uint64_t{1} << 29)}).status().message() ==
        "shard 0 was asked for tensor \"w\" (id 0) row 536870912, which is not a row of a "
        "row-sparse tensor it owns");
  CHECK_FALSE(shard->RowsRun({ParamKey(1, 0)}).ok());  // the dense bias
  const Status foreign = Round(*shard, 1, 0.1, 1, {int64_t{1} << 29}, {{1, 1}});
  CHECK(foreign.code() == StatusCode::kCorruption);
  CHECK(shard->num_rows_held() == 0);
  // The hash partitioner spreads neighbouring rows over shards.
  shuffle::HashPartitioner hash(3);
  int counts[3] = {0, 0, 0};
  for (uint64_t row = 0; row < 3000; ++row) ++counts[hash.ShardOf(ParamKey(0, row))];
  for (int c : counts) CHECK(c > 900);
}

TEST_CASE("held rows go to a state sorted by id and are restored from a shard file", "[runtime]") {
  auto shard = Shard(
      "adagrad", api::Hyperparameters(std::map<std::string, std::string>{{"epsilon", "1e-10"}}));
  REQUIRE(Round(*shard, 1, 0.1, 1, {900, 5}, {{1, 1}, {2, 2}}).ok());
  ModelState state = ModelState::Zeros(Layout(), shard->num_slots());
  shard->StoreTo(&state);
  CHECK(state.rows[0].ids == std::vector<int64_t>{5, 900});
  CHECK(state.rows[0].values.size() == 4);
  CHECK(state.rows[0].slots[0] == std::vector<float>{4, 4, 1, 1});
  CHECK(shard->StateBlocks().size() == 2 * 2 * 2 + 2);  // two rows and b, params and G
  auto restored = Shard(
      "adagrad", api::Hyperparameters(std::map<std::string, std::string>{{"epsilon", "1e-10"}}));
  ShardFile file;
  file.keys = shard->StateKeys();
  file.values = shard->StateBlocks();
  file.num_slots = shard->num_slots();
  REQUIRE(restored->Restore(file).ok());
  CHECK(restored->num_rows_held() == 2);
  CHECK(restored->StateBlocks() == shard->StateBlocks());
}

}  // namespace
}  // namespace mrtrain::runtime
