#include "runtime/worker/shard_host.h"

#include <catch2/catch.hpp>

#include "engine/updaters/registry.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;
using shuffle::TreeNode;

TreeNode Leaf(int64_t p) { return TreeNode{p, 1}; }

struct Fixture {
  std::shared_ptr<const ModelLayout> layout =
      std::make_shared<const ModelLayout>(ModelLayout::Create({TensorSpec{"w", {4}}}, 4).value());
  std::unique_ptr<ShardHost> host;
  explicit Fixture(int64_t staleness = 0) {
    auto rule = updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value();
    auto shard = std::make_unique<ReducerShard>(0, layout, layout->keys(), std::move(rule), 0, 0);
    host = std::make_unique<ShardHost>(std::move(shard), 3, 0, staleness);
  }
  static shuffle::Run RunOf(float v) {
    shuffle::Run run;
    std::vector<float> g(4, v);
    run.Append(ParamKey(0, 0), g.data(), 4);
    return run;
  }
  float W0() {
    float block[4];
    REQUIRE(host->shard().ReadBlock(ParamKey(0, 0), block).ok());
    return block[0];
  }
};

TEST_CASE("a shard host reduces once every partition's run is in", "[runtime]") {
  Fixture f;
  REQUIRE(f.host->AcceptRun(1, Leaf(2), Fixture::RunOf(3)).ok());
  REQUIRE(f.host->AcceptRun(1, Leaf(0), Fixture::RunOf(1)).ok());
  CHECK(f.host->Missing(1) == std::vector<int64_t>{1});
  Status early = f.host->Reduce(RoundUpdate{1, 1.0, 6.0, false});
  CHECK(early.code() == StatusCode::kFailedPrecondition);
  CHECK(early.message().find("partitions 1") != std::string::npos);
  REQUIRE(f.host->AcceptRun(1, Leaf(1), Fixture::RunOf(2)).ok());
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 6.0, false}).ok());
  CHECK(f.W0() == -1.0f);  // -(1 + 2 + 3) / 6
}

TEST_CASE("duplicate and late runs are dropped and counted", "[runtime]") {
  Fixture f;
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(1, Leaf(p), Fixture::RunOf(1)).ok());
  REQUIRE(f.host->AcceptRun(1, Leaf(0), Fixture::RunOf(100)).ok());  // a second attempt
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).ok());
  CHECK(f.W0() == -1.0f);  // the first run of partition 0 counted, not the duplicate
  REQUIRE(f.host->AcceptRun(1, Leaf(1), Fixture::RunOf(100)).ok());  // late: step 1 is done
  CHECK(f.host->dropped_runs() == 2);
  CHECK(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).code() == StatusCode::kAborted);
  Status outside = f.host->AcceptRun(1, Leaf(3), Fixture::RunOf(1));
  CHECK(outside.code() == StatusCode::kCorruption);
  CHECK(outside.message() ==
        "shard 0: run for partitions [3, 4), which is not a node of the reduction tree over 3 "
        "partitions");
  CHECK(f.host->AcceptRun(1, TreeNode{0, 8}, Fixture::RunOf(1)).code() ==
        StatusCode::kCorruption);  // larger than the root [0, 4)
  CHECK(f.host->AcceptRun(1, TreeNode{1, 2}, Fixture::RunOf(1)).code() ==
        StatusCode::kCorruption);  // not aligned
}

TEST_CASE("runs of the next step may arrive before this step is reduced", "[runtime]") {
  Fixture f;
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(2, Leaf(p), Fixture::RunOf(2)).ok());
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(1, Leaf(p), Fixture::RunOf(1)).ok());
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).ok());
  CHECK(f.host->Missing(2).empty());
  REQUIRE(f.host->Reduce(RoundUpdate{2, 1.0, 3.0, false}).ok());
  CHECK(f.W0() == -3.0f);
}

// Runs over 5 partitions whose per-key sums a node's run carries; each partition's value for the
// key is chosen so that the tree order and the linear order give different floats.
struct FiveFixture {
  std::shared_ptr<const ModelLayout> layout =
      std::make_shared<const ModelLayout>(ModelLayout::Create({TensorSpec{"w", {1}}}, 1).value());
  std::unique_ptr<ShardHost> host;
  static constexpr float kLeaf[5] = {1e8f, 1.0f, -1e8f, 1.0f, 0.5f};
  FiveFixture() {
    auto rule = updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value();
    auto shard = std::make_unique<ReducerShard>(0, layout, layout->keys(), std::move(rule), 0, 0);
    host = std::make_unique<ShardHost>(std::move(shard), 5);
  }
  static shuffle::Run RunOf(float v) {
    shuffle::Run run;
    run.Append(ParamKey(0, 0), &v, 1);
    return run;
  }
  // The node's sum in tree order, as a worker that combined it would send.
  static float SumOf(TreeNode node) {
    if (node.count == 1) return kLeaf[node.lo];
    const int64_t half = node.count / 2;
    if (node.lo + half >= 5) return SumOf(TreeNode{node.lo, half});
    return SumOf(TreeNode{node.lo, half}) + SumOf(TreeNode{node.lo + half, half});
  }
  void Send(TreeNode node) { REQUIRE(host->AcceptRun(1, node, RunOf(SumOf(node))).ok()); }
  float Reduced() {
    REQUIRE(host->Reduce(RoundUpdate{1, 1.0, 1.0, false}).ok());
    float w;
    REQUIRE(host->shard().ReadBlock(ParamKey(0, 0), &w).ok());
    return w;
  }
};

TEST_CASE("a shard host reduces any cover of the partitions to the same bits", "[runtime]") {
  // 1e8 + 1 rounds to 1e8, so the tree ((p0 + p1) + (p2 + p3)) + p4 gives 0.5 and the linear
  // order 1.5: the reducer gives the tree's bits, whatever the cover (sgd: w = -sum).
  const float tree = -(((1e8f + 1.0f) + (-1e8f + 1.0f)) + 0.5f);
  std::vector<std::vector<TreeNode>> covers = {
      {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}},
      {{0, 2}, {2, 2}, {4, 1}},
      {{0, 4}, {4, 4}},
      {{0, 8}},
      {{4, 1}, {2, 1}, {0, 2}, {3, 1}},  // any arrival order
  };
  for (const auto& cover : covers) {
    FiveFixture f;
    for (TreeNode node : cover) f.Send(node);
    CHECK(f.host->Missing(1).empty());
    CHECK(f.Reduced() == tree);
  }
  CHECK(tree != -(1e8f + 1.0f + -1e8f + 1.0f + 0.5f));  // the order matters for these values
}

TEST_CASE("overlapping and duplicate nodes: the largest node received is used", "[runtime]") {
  FiveFixture f;
  f.Send(TreeNode{0, 1});
  f.Send(TreeNode{1, 1});
  f.Send(TreeNode{4, 1});
  CHECK(f.host->Missing(1) == std::vector<int64_t>{2, 3});
  Status early = f.host->Reduce(RoundUpdate{1, 1.0, 1.0, false});
  CHECK(early.code() == StatusCode::kFailedPrecondition);
  CHECK(early.message() == "shard 0 step 1: no run yet from partitions 2, 3");
  // A backup attempt at a coarser grain covers the leaves already in, and a retry repeats one.
  REQUIRE(
      f.host->AcceptRun(1, TreeNode{0, 4}, FiveFixture::RunOf(FiveFixture::SumOf({0, 4}))).ok());
  REQUIRE(f.host->AcceptRun(1, TreeNode{4, 1}, FiveFixture::RunOf(1e9f)).ok());  // dropped
  CHECK(f.host->dropped_runs() == 1);
  CHECK(f.host->Missing(1).empty());
  CHECK(f.Reduced() == -(((1e8f + 1.0f) + (-1e8f + 1.0f)) + 0.5f));
}

TEST_CASE("with staleness s a shard host serves the last s+1 versions, and no other", "[runtime]") {
  // The first value of the parameters after `updates` updates, or the error.
  auto first = [](ShardHost& host, int64_t updates) -> Result<float> {
    MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<const shuffle::Run> run, host.ParamsAfter(updates));
    REQUIRE(run->values.size() == 4);
    return run->values[0];
  };
  auto step = [](Fixture& f, int64_t k) {
    for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(k, Leaf(p), Fixture::RunOf(1)).ok());
    REQUIRE(f.host->Reduce(RoundUpdate{k, 1.0, 3.0, false}).ok());  // w -= 1
  };
  SECTION("staleness 2 keeps the versions after updates 1, 2 and 3 once 3 is reduced") {
    Fixture f(2);
    for (int64_t k = 1; k <= 3; ++k) step(f, k);
    CHECK(first(*f.host, 3).value() == -3.0f);
    CHECK(first(*f.host, 2).value() == -2.0f);
    CHECK(first(*f.host, 1).value() == -1.0f);
    Result<float> gone = first(*f.host, 0);
    CHECK(gone.status().code() == StatusCode::kFailedPrecondition);
    CHECK(gone.status().message() ==
          "reducer shard 0 keeps the parameters after updates 1 to 3 (training.staleness 2); "
          "those after update 0 are no longer kept");
    Result<float> early = first(*f.host, 4);
    CHECK(early.status().message() ==
          "reducer shard 0 holds step 3; the parameters after update 4 are not there yet");
  }
  SECTION("staleness 0 keeps only the latest") {
    Fixture f;
    step(f, 1);
    CHECK(first(*f.host, 1).value() == -1.0f);
    CHECK(first(*f.host, 0).status().message() ==
          "reducer shard 0 keeps the parameters after updates 1 to 1 (training.staleness 0); "
          "those after update 0 are no longer kept");
  }
  SECTION("a host restored at step 6 has nothing older") {
    auto rule = updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value();
    Fixture f(1);
    auto shard =
        std::make_unique<ReducerShard>(0, f.layout, f.layout->keys(), std::move(rule), 0, 0);
    ShardHost restored(std::move(shard), 3, 6, 1);
    CHECK(first(restored, 6).value() == 0.0f);
    CHECK(first(restored, 5).status().code() == StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace mrtrain::runtime
