#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "engine/base/status.h"
#include "runtime/worker/reducer_shard.h"
#include "shuffle/buffer/run.h"
#include "shuffle/merge/tree_sum.h"

namespace mrtrain::runtime {

// Hosts one reducer shard on a worker: collects the runs that map tasks push for a step, each
// the sum over one node of the partition tree (shuffle/merge/tree_sum.h), and reduces the step
// once the master says every map task has finished and the nodes received cover every
// partition. Pushes may arrive in any order, twice (a re-run or speculative attempt), late
// (from a worker already declared lost) or overlapping (a node and some of its children); the
// first run of each (step, node) is kept and repeats are dropped and counted. Overlaps are
// harmless: every cover of the partitions sums to the same bits, and Reduce takes the largest
// nodes. With training.staleness s > 0 it also keeps the parameters of the s steps before the
// last one reduced (a copy each, the one its pulls were served from), for map tasks that read
// older ones (JobSpec::MapReadsAfter); with s = 0 it keeps none. Not thread-safe: the worker calls it from its event loop.
class ShardHost {
 public:
  // `step`: the updates already applied to the shard's parameters (0, or a checkpoint's step).
  // `staleness`: how many versions before the latest to keep (none are kept from before `step`:
  // a restart or resume begins at an epoch's start, which staleness never reaches back past).
  ShardHost(std::unique_ptr<ReducerShard> shard, int64_t num_partitions, int64_t step = 0,
            int64_t staleness = 0);

  // Keeps the run of `node` for `step`. kCorruption for a node that is not one of the tree over
  // this job's partitions; runs for a step already reduced, or a node already received, are
  // dropped (Ok, counted).
  Status AcceptRun(int64_t step, shuffle::TreeNode node, shuffle::Run run);

  // The partitions no run received for `step` covers yet, ascending.
  std::vector<int64_t> Missing(int64_t step) const;

  // Applies step update.step from the runs received. kFailedPrecondition, naming the missing
  // partitions, when some have not arrived (the master must wait or re-run them), or when the step
  // is not the next one; kAborted for a step at or below the last one reduced. Frees the step's
  // runs.
  Status Reduce(const RoundUpdate& update);

  // The owned blocks' parameters after `updates` updates, as a run in key order: the latest or
  // one of the kept older versions. kFailedPrecondition for a version not reduced yet or no
  // longer kept (never another version's values). A version is copied out of the shard once,
  // by its first pull, and shared, never changed, by every pull of it after (each worker pulls
  // every version, and with staleness the copy is the older version kept).
  Result<std::shared_ptr<const shuffle::Run>> ParamsAfter(int64_t updates) const;

  int64_t last_reduced_step() const { return last_reduced_step_; }
  int64_t dropped_runs() const { return dropped_runs_; }
  ReducerShard& shard() { return *shard_; }

 private:
  std::unique_ptr<ReducerShard> shard_;
  const int64_t num_partitions_;
  const int64_t staleness_;
  int64_t last_reduced_step_;
  // The parameters after last_reduced_step_, once a pull asked for them; reset by Reduce.
  mutable std::shared_ptr<const shuffle::Run> latest_;
  // step -> the parameters after it; at most staleness_ steps, all before last_reduced_step_
  std::map<int64_t, std::shared_ptr<const shuffle::Run>> older_;
  int64_t dropped_runs_ = 0;
  // step -> node -> run
  std::map<int64_t, std::map<shuffle::TreeNode, shuffle::Run>> pending_;
};

}  // namespace mrtrain::runtime
