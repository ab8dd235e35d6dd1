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
  Fixture() {
    auto rule = updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value();
    auto shard = std::make_unique<ReducerShard>(0, layout, layout->keys(), std::move(rule), 0, 0);
    shard->LoadFrom(ModelState::Zeros(layout, 0));
    host = std::make_unique<ShardHost>(std::move(shard), 3);
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
    shard->LoadFrom(ModelState::Zeros(layout, 0));
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

}  // namespace
}  // namespace mrtrain::runtime
