#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/base/status.h"
#include "runtime/worker/reducer_shard.h"
#include "shuffle/buffer/run.h"

namespace mrtrain::runtime {

// Hosts one reducer shard on a worker: collects the runs that map tasks push for a step, one
// per partition, and reduces the step once the master says every map task has finished.
// Pushes may arrive in any order, twice (a re-run or speculative attempt) or late (from a
// worker already declared lost); the first run of each (step, partition) is kept and the rest
// are dropped and counted, which is safe because every attempt of a task computes the same
// bytes. Not thread-safe: the worker calls it from its event loop.
class ShardHost {
 public:
  // `step`: the updates already applied to the shard's parameters (0, or a checkpoint's step).
  ShardHost(std::unique_ptr<ReducerShard> shard, int64_t num_partitions, int64_t step = 0);

  // Keeps partition p's run for `step`. kCorruption for a partition out of range; runs for a
  // step already reduced, or a partition already received, are dropped (Ok, counted).
  Status AcceptRun(int64_t step, int64_t partition, shuffle::Run run);

  // The partitions whose run for `step` has not arrived yet, ascending.
  std::vector<int64_t> Missing(int64_t step) const;

  // Applies step update.step from the runs received. kFailedPrecondition, naming the missing
  // partitions, when some have not arrived (the master must wait or re-run them), or when the step
  // is not the next one; kAborted for a step at or below the last one reduced. Frees the step's runs.
  Status Reduce(const RoundUpdate& update);

  int64_t last_reduced_step() const { return last_reduced_step_; }
  int64_t dropped_runs() const { return dropped_runs_; }
  ReducerShard& shard() { return *shard_; }

 private:
  std::unique_ptr<ReducerShard> shard_;
  const int64_t num_partitions_;
  int64_t last_reduced_step_;
  int64_t dropped_runs_ = 0;
  // step -> partition -> run
  std::map<int64_t, std::map<int64_t, shuffle::Run>> pending_;
};

}  // namespace mrtrain::runtime
