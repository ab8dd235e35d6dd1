// training.staleness end to end in local mode (the real master and workers in one process): the
// map tasks read exactly the parameters JobSpec::MapReadsAfter names, checked against a model
// small enough to train by hand.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "jobs/spec/job_spec.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/local/local_job.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using testing::TempDir;

// Trains the spec with `overrides` and returns the final model's w[0] and b[0].
std::vector<float> TrainedWeights(const std::string& yaml,
                                  const std::vector<std::string>& overrides) {
  auto spec = jobs::ParseJobSpec(yaml, "job.yaml", overrides);
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  Result<TrainingResult> result = RunLocalJob(*spec, LocalRunOptions(), nullptr);
  INFO(result.status().ToString());
  REQUIRE(result.ok());
  Result<Checkpoint> model = ReadCheckpointFile(result->model_path);
  REQUIRE(model.ok());
  REQUIRE(model->state.tensors.size() == 2);
  return {model->state.tensors[0][0], model->state.tensors[1][0]};
}

TEST_CASE("with training.staleness a round reads the parameters it names, never across epochs",
          "[runtime]") {
  TempDir dir;
  // Four equal rows y = 1 at x = 1, one per partition and round: every round's mean gradient of
  // w and of b is the residual r = w + b - 1 at the parameters the round read, and sgd sets
  // w = b = u with u' = u - 0.125 * (2 u_read - 1). Every value is a short binary fraction, so
  // the float arithmetic is exact.
  const std::string train = dir.Write("train.csv", "1,1\n1,1\n1,1\n1,1\n");
  const std::string yaml = "data: {train: {path: " + train +
                           ", format: csv, partitions: 2}}\n"
                           "model: {type: linear, init: zeros}\n"
                           "update: {rule: sgd, learning_rate: 0.125}\n"
                           "training: {epochs: 2, rounds_per_epoch: 2, threads: 1}\n"
                           "output: {dir: " +
                           dir.File("out") + "}\n";
  // s = 0: every round reads the one before: u = 0.125, 0.21875, 0.2890625, 0.341796875.
  CHECK(TrainedWeights(yaml, {}) == std::vector<float>{0.341796875f, 0.341796875f});
  // s = 1: epoch 1's rounds both read update 0 (u = 0.125, 0.25); epoch 2's both read update 2,
  // its start (u = 0.3125, 0.375). Reading update 1 in epoch 2's first round, across the
  // epoch's start, would give 0.40625 instead.
  const std::vector<float> stale = {0.375f, 0.375f};
  CHECK(TrainedWeights(yaml, {"training.staleness=1", "output.dir=" + dir.File("s1")}) == stale);
  // s = 2 reads no older within epochs of 2 rounds; several reducer shards change nothing.
  CHECK(TrainedWeights(yaml, {"training.staleness=2", "shuffle.reducers=2",
                              "output.dir=" + dir.File("s2")}) == stale);
}

}  // namespace
}  // namespace mrtrain::runtime
