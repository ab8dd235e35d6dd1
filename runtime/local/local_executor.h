#pragma once

#include <memory>
#include <vector>

#include "engine/api/mapper.h"
#include "engine/base/thread_pool.h"
#include "engine/data/partition_data.h"
#include "engine/tensor/model_state.h"
#include "jobs/spec/job_spec.h"
#include "runtime/master/round_executor.h"
#include "runtime/worker/map_task.h"
#include "runtime/worker/mapper_pool.h"
#include "runtime/worker/shard_host.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {

// Everything a local executor runs on, built by the job setup.
struct LocalJobParts {
  std::shared_ptr<const ModelLayout> layout;
  int64_t num_features = 0;
  std::vector<std::shared_ptr<const data::PartitionData>> train;  // partition order
  std::vector<std::shared_ptr<const data::PartitionData>> test, validation;
  std::vector<std::unique_ptr<api::Mapper>> mappers;  // one per pool thread
  std::vector<std::unique_ptr<ShardHost>> shards;
  std::unique_ptr<shuffle::Partitioner> partitioner;
  ModelState state;  // the starting parameters, slots and step
};

// RoundExecutor for local mode: map tasks run in parallel on a pool (one mapper per thread),
// their runs go to reducer shards in partition order, shards reduce in parallel, and the
// parameters are pulled back from the shards for the next round. Not thread-safe.
class LocalExecutor : public RoundExecutor {
 public:
  LocalExecutor(const jobs::JobSpec& spec, LocalJobParts parts, int threads);

  Result<api::MapStats> RunRound(const RoundRequest& request) override;
  bool HasEvalSet(EvalSet set) const override;
  Result<api::MapStats> Evaluate(EvalSet set) override;
  Result<ModelState> Snapshot() override;

 private:
  const std::vector<std::shared_ptr<const data::PartitionData>>& SetOf(EvalSet set) const;

  MapTaskConfig config_;
  LocalJobParts parts_;  // its mappers are moved into mappers_
  MapperPool mappers_;
  ThreadPool pool_;
  RowOrderCache row_orders_;
  const int max_attempts_;
  // The parameters map tasks read, pulled from the shards after every round. Its slots are
  // stale: Snapshot takes them from the shards.
  ModelState params_;
};

}  // namespace mrtrain::runtime
