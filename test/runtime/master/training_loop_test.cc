#include "runtime/master/training_loop.h"

#include <cstdlib>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::runtime {
namespace {

std::string Name(const RoundRequest& r) {
  return "e" + std::to_string(r.epoch) + "r" + std::to_string(r.round) + "s" +
         std::to_string(r.step);
}

// A cluster as the training loop sees it: records what it is asked, in order, and fails where a
// test says. Every round's map tasks count 10 examples.
class FakeCluster : public RoundExecutor {
 public:
  Result<api::MapStats> RunRound(const RoundRequest& r) override {
    MRTRAIN_RETURN_IF_ERROR(Call("round " + Name(r)));
    return api::MapStats{1.0, 10, 5};
  }
  Result<api::MapStats> RunOverlapped(const RoundRequest* map, const RoundRequest* reduce,
                                      int64_t examples) override {
    std::string call = map ? "map " + Name(*map) : "";
    if (reduce) {
      call += std::string(map ? " + " : "") + "reduce " + Name(*reduce) + " of " +
              std::to_string(examples);
    }
    MRTRAIN_RETURN_IF_ERROR(Call(call));
    return map ? api::MapStats{1.0, 10, 5} : api::MapStats{};
  }
  bool HasEvalSet(EvalSet) const override { return false; }
  Result<api::MapStats> Evaluate(EvalSet) override { return api::MapStats{}; }
  Status SaveCheckpoint(CheckpointManifest manifest, CheckpointDir&) override {
    return Call("save " + std::to_string(manifest.epochs_done));
  }
  Result<int64_t> Recover(const Status& failure) override {
    calls.push_back("recover: " + failure.message());
    if (failure.code() != StatusCode::kUnavailable) return failure;
    return int64_t{1};  // the checkpoint after epoch 1
  }

  std::vector<std::string> calls;
  std::string fail_at;  // the call that fails (once), with Unavailable
  std::string end_at;   // the call that ends the job

 private:
  Status Call(const std::string& call) {
    calls.push_back(call);
    if (call == fail_at) {
      fail_at.clear();
      return UnavailableError("lost a shard host");
    }
    if (call == end_at) return AbortedError("the test ends here");
    return Status::Ok();
  }
};

jobs::JobSpec Spec(int64_t staleness) {
  jobs::JobSpec spec;
  spec.epochs = 2;
  spec.rounds_per_epoch = 3;
  spec.staleness = staleness;
  spec.output_dir = std::string(std::getenv("TEST_TMPDIR")) + "/loop" + std::to_string(staleness);
  return spec;
}

TEST_CASE("with staleness 0 the loop runs each round whole, then saves", "[runtime]") {
  FakeCluster cluster;
  cluster.end_at = "save 2";
  auto result = RunTrainingLoop(Spec(0), JobMetadata{}, cluster, 0, nullptr);
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().message() == "the test ends here");
  CHECK(cluster.calls == std::vector<std::string>{"round e0r0s1", "round e0r1s2", "round e0r2s3",
                                                  "save 1", "round e1r0s4", "round e1r1s5",
                                                  "round e1r2s6", "save 2",
                                                  "recover: the test ends here"});
}

TEST_CASE(
    "with staleness 1 a round's map step overlaps the previous reduce within an epoch, "
    "and a recovery replays from the checkpoint",
    "[runtime]") {
  FakeCluster cluster;
  cluster.fail_at = "map e1r2s6 + reduce e1r1s5 of 10";
  cluster.end_at = "save 2";
  auto result = RunTrainingLoop(Spec(1), JobMetadata{}, cluster, 0, nullptr);
  REQUIRE_FALSE(result.ok());
  const std::vector<std::string> epoch2 = {"map e1r0s4", "map e1r1s5 + reduce e1r0s4 of 10",
                                           "map e1r2s6 + reduce e1r1s5 of 10"};
  std::vector<std::string> expected = {"map e0r0s1", "map e0r1s2 + reduce e0r0s1 of 10",
                                       "map e0r2s3 + reduce e0r1s2 of 10",
                                       "reduce e0r2s3 of 10",  // alone: the save sees it
                                       "save 1"};
  expected.insert(expected.end(), epoch2.begin(), epoch2.end());
  expected.push_back("recover: lost a shard host");
  // The replay of epoch 2 starts afresh: no map step crosses an epoch's start.
  expected.insert(expected.end(), epoch2.begin(), epoch2.end());
  expected.insert(expected.end(), {"reduce e1r2s6 of 10", "save 2", "recover: the test ends here"});
  CHECK(cluster.calls == expected);
}

}  // namespace
}  // namespace mrtrain::runtime
