#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/api/combiner.h"
#include "engine/api/mapper.h"
#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/tensor/model_layout.h"
#include "runtime/worker/pulled_rows.h"
#include "runtime/worker/row_order.h"
#include "runtime/worker/task_id.h"
#include "shuffle/buffer/run.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {

// What every map task of a job shares. Constant for the job.
struct MapTaskConfig {
  const ModelLayout* layout = nullptr;  // must outlive the tasks
  std::string mapper_name;   // model.plugin or model.type, for errors; empty: just "mapper"
  int64_t num_features = 0;  // the column count mappers see
  int64_t rounds_per_epoch = 1;
  int64_t chunk_rows = 256;  // rows per mapper call; the combiner sums the calls
  uint64_t seed = 1;
  int64_t buffer_bytes = 256LL << 20;
  // Where a task's output past buffer_bytes spills (made when first needed); "" = the task
  // fails instead.
  std::string spill_dir;
  // Model averaging: run local SGD over the round's rows and emit the weighted negated
  // parameter delta instead of the gradient.
  bool model_averaging = false;
  double local_learning_rate = 0.1;
  int64_t local_batch_size = 32;
};

// A map task's result: one run per reducer shard, its statistics, and what it spilled.
struct MapTaskOutput {
  std::vector<shuffle::Run> runs;
  api::MapStats stats;
  int64_t spilled_runs = 0;   // run files written past buffer_bytes (0: all in memory)
  int64_t spilled_bytes = 0;  // their bytes
};

// Runs one map task: takes the rows of round `task.round` from the partition's epoch order,
// calls the mapper over chunks of them, sums what it emits per block and cuts it into runs for
// the partitioner's shards; then the job's combiner, if any, transforms each block. Errors:
// kPluginError when the mapper or combiner throws or the mapper emits a bad key (the message
// names the task); past the buffer budget the output spills to config.spill_dir and is merged
// back (the same bytes as in memory), and then kIOError / kCorruption name a run file that
// cannot be written or read back (its offset too); kFailedPrecondition when a block alone
// exceeds the budget, or any output does with no spill_dir. When the mapper
// throws on a chunk, it is called again on each row of the chunk alone, and the message names
// the first row it throws on: its file and line or record index (data::DescribeRow) and its
// row in the partition. Those calls feed nothing the task outputs, which fails anyway.
// `mapper` serves one task at a time; everything else is shared read-only.
//
// A model with row-sparse tensors: before the first mapper call the mapper names the rows the
// round's rows need (Mapper::NeededRows, checked: kPluginError naming a dense tensor, an unknown
// one or a row out of range), and `fetch_rows` pulls them; `params` then holds the dense tensors
// only. Errors of the fetch come back with the task's name.
Result<MapTaskOutput> RunMapTask(const MapTaskConfig& config, const TaskId& task,
                                 const data::PartitionData& partition,
                                 const api::ParamsView& params, api::Mapper& mapper,
                                 const shuffle::Partitioner& partitioner, RowOrderCache& row_orders,
                                 api::Combiner* combiner = nullptr,
                                 const RowFetcher* fetch_rows = nullptr);

// The mapper's loss, example count and correct count over a whole partition (no gradients),
// in chunks of chunk_rows. kPluginError when the mapper throws, naming the record as RunMapTask.
// When `layout` has row-sparse tensors, each chunk's rows are pulled by `fetch_rows` first.
Result<api::MapStats> EvaluatePartition(const data::PartitionData& partition, int64_t num_features,
                                        int64_t chunk_rows, const api::ParamsView& params,
                                        api::Mapper& mapper, const ModelLayout* layout = nullptr,
                                        const RowFetcher* fetch_rows = nullptr);

// Rows [begin, end) of `rows` as a view (CSR views keep the base column/value pointers).
api::Rows SliceRows(const api::Rows& rows, int64_t begin, int64_t end);

}  // namespace mrtrain::runtime
