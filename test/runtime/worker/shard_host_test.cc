#include "runtime/worker/shard_host.h"

#include <catch2/catch.hpp>

#include "engine/updaters/registry.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;

struct Fixture {
  std::shared_ptr<const ModelLayout> layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"w", {4}}}, 4).value());
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
  REQUIRE(f.host->AcceptRun(1, 2, Fixture::RunOf(3)).ok());
  REQUIRE(f.host->AcceptRun(1, 0, Fixture::RunOf(1)).ok());
  CHECK(f.host->Missing(1) == std::vector<int64_t>{1});
  Status early = f.host->Reduce(RoundUpdate{1, 1.0, 6.0, false});
  CHECK(early.code() == StatusCode::kFailedPrecondition);
  CHECK(early.message().find("partitions 1") != std::string::npos);
  REQUIRE(f.host->AcceptRun(1, 1, Fixture::RunOf(2)).ok());
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 6.0, false}).ok());
  CHECK(f.W0() == -1.0f);  // -(1 + 2 + 3) / 6
}

TEST_CASE("duplicate and late runs are dropped and counted", "[runtime]") {
  Fixture f;
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(1, p, Fixture::RunOf(1)).ok());
  REQUIRE(f.host->AcceptRun(1, 0, Fixture::RunOf(100)).ok());  // a second attempt
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).ok());
  CHECK(f.W0() == -1.0f);  // the first run of partition 0 counted, not the duplicate
  REQUIRE(f.host->AcceptRun(1, 1, Fixture::RunOf(100)).ok());  // late: step 1 is done
  CHECK(f.host->dropped_runs() == 2);
  CHECK(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).code() == StatusCode::kAborted);
  CHECK(f.host->AcceptRun(1, 3, Fixture::RunOf(1)).code() == StatusCode::kCorruption);
}

TEST_CASE("runs of the next step may arrive before this step is reduced", "[runtime]") {
  Fixture f;
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(2, p, Fixture::RunOf(2)).ok());
  for (int p = 0; p < 3; ++p) REQUIRE(f.host->AcceptRun(1, p, Fixture::RunOf(1)).ok());
  REQUIRE(f.host->Reduce(RoundUpdate{1, 1.0, 3.0, false}).ok());
  CHECK(f.host->Missing(2).empty());
  REQUIRE(f.host->Reduce(RoundUpdate{2, 1.0, 3.0, false}).ok());
  CHECK(f.W0() == -3.0f);
}

}  // namespace
}  // namespace mrtrain::runtime
