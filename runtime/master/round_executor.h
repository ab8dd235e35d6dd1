#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint_dir.h"

namespace mrtrain::runtime {

// One MapReduce round as the master asks for it.
struct RoundRequest {
  int64_t epoch = 0;         // 0-based
  int64_t round = 0;         // 0-based, within the epoch
  int64_t step = 0;          // 1-based update count, this round included
  double learning_rate = 0;  // after the schedule
};

enum class EvalSet { kTest, kValidation };

// The peak resident memory of a job's processes since the job started (see
// engine/base/peak_rss.h): the master's (in local mode, the one process's) and each worker's as
// it last reported it (with its map tasks). 0 bytes = unknown.
struct JobPeakRss {
  struct Worker {
    uint32_t id = 0;
    std::string name;  // host:pid unless named
    int64_t bytes = 0;
  };
  int64_t master_bytes = 0;
  bool workers_in_process = false;  // local mode: master_bytes is the workers' figure too
  std::vector<Worker> workers;      // by id; empty in local mode
};

// to += from. Statistics of tasks are always added in the partitions' tree order
// (shuffle/merge/tree_sum.h), so the float sum of losses is the same however the tasks were
// spread and however many partitions each covered.
inline void AddStats(const api::MapStats& from, api::MapStats* to) {
  to->loss_sum += from.loss_sum;
  to->examples += from.examples;
  to->correct += from.correct;
}

// Runs the rounds of a job: every partition's map task at the current parameters, the shuffle
// of their outputs to reducer shards, and the shards' updates, so that afterwards the
// parameters are those of the next step. The training loop drives it. The real one is the
// master's (ClusterExecutor in master_job.cc), over the workers; local mode runs that same
// master with its workers in one process over the in-process transport. It stays an interface
// on purpose: it is the seam a fake cluster plugs into (test/runtime/master/
// training_loop_test.cc), so the loop's own logic (which rounds overlap with
// training.staleness, replays after a recovery, when checkpoints are saved) is tested without a
// master or workers, and the loop depends on no master internals. Implementations must make
// the result depend only on the requests, never on timing or placement.
class RoundExecutor {
 public:
  virtual ~RoundExecutor() = default;

  // Runs one round; returns the statistics of all map tasks summed in the partitions' tree order.
  virtual Result<api::MapStats> RunRound(const RoundRequest& request) = 0;

  // With training.staleness >= 1: runs the map tasks of `map` while the update of `reduce` (the
  // round before, whose map tasks counted `examples` examples) is applied, and returns the map
  // tasks' statistics as RunRound does (none without `map`). Either may be null (an epoch's
  // first map step, its last reduce). The map tasks read the parameters JobSpec::MapReadsAfter
  // names, which are committed before this is called, so the result does not depend on which
  // of the two finishes first.
  virtual Result<api::MapStats> RunOverlapped(const RoundRequest* map, const RoundRequest* reduce,
                                              int64_t examples) = 0;

  // Loss and accuracy of the current parameters on a held-out set.
  virtual bool HasEvalSet(EvalSet set) const = 0;
  virtual Result<api::MapStats> Evaluate(EvalSet set) = 0;

  // Writes the checkpoint of the current parameters and update-rule slots into `dir`: every
  // reducer shard writes its file, then the manifest is committed. `manifest` comes with the
  // job's metadata and epochs_done; the executor adds the step, the model's layout and the
  // shards. The master never holds the whole model.
  virtual Status SaveCheckpoint(CheckpointManifest manifest, CheckpointDir& dir) = 0;

  // Called when one of the calls above failed with `failure`. An executor that can recover
  // (a lost reducer shard host: the shards are placed again and restored from the last
  // committed checkpoint) does so and returns the epochs done at that checkpoint: the loop
  // carries on from there, and since every step is deterministic it ends with the same model.
  // Otherwise returns `failure`, which ends the job.
  virtual Result<int64_t> Recover(const Status& failure) { return failure; }

  // The job's peak memory so far, for each epoch's report.
  virtual JobPeakRss PeakRss() const { return {}; }
};

}  // namespace mrtrain::runtime
