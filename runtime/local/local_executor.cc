#include "runtime/local/local_executor.h"

#include "engine/base/log.h"

namespace mrtrain::runtime {

LocalExecutor::LocalExecutor(const jobs::JobSpec& spec, LocalJobParts parts, int threads)
    : parts_(std::move(parts)),
      mappers_(std::move(parts_.mappers)),
      pool_(threads),
      row_orders_(spec.seed),
      max_attempts_(spec.max_attempts) {
  config_.layout = parts_.layout.get();
  config_.num_features = parts_.num_features;
  config_.rounds_per_epoch = spec.rounds_per_epoch;
  config_.chunk_rows = spec.chunk_rows;
  config_.seed = spec.seed;
  config_.buffer_bytes = spec.shuffle_buffer_bytes;
  config_.model_averaging = spec.mode == jobs::JobSpec::Mode::kModelAveraging;
  config_.local_learning_rate = spec.local_learning_rate;
  config_.local_batch_size = spec.local_batch_size;
  params_ = parts_.state;
}

Result<api::MapStats> LocalExecutor::RunRound(const RoundRequest& request) {
  const int64_t num_partitions = static_cast<int64_t>(parts_.train.size());
  std::vector<Result<MapTaskOutput>> outputs(num_partitions, InternalError("not run"));
  const api::ParamsView view = params_.View();
  pool_.ParallelFor(num_partitions, [&](int64_t p) {
    auto mapper = mappers_.Borrow();
    // Every attempt computes the same bytes, so retrying a failed task is safe; a transient
    // failure (a plugin's flaky resource) costs time, never a different model.
    for (int attempt = 0; attempt < max_attempts_; ++attempt) {
      TaskId task{request.epoch, request.round, p, attempt};
      outputs[p] = RunMapTask(config_, task, *parts_.train[p], view, *mapper, *parts_.partitioner,
                              row_orders_);
      if (outputs[p].ok()) return;
      Logger("local")->warn("{} failed: {}", task.ToString(), outputs[p].status().message());
    }
    outputs[p] = Status(
        outputs[p].status().code(),
        "map task for partition " + std::to_string(p) + " failed " + std::to_string(max_attempts_) +
            " times (training.max_attempts); last: " + outputs[p].status().message());
  });
  api::MapStats stats;
  for (int64_t p = 0; p < num_partitions; ++p) {  // partition order
    if (!outputs[p].ok()) return outputs[p].status();
    AddStats(outputs[p]->stats, &stats);
  }

  RoundUpdate update;
  update.step = request.step;
  update.learning_rate = request.learning_rate;
  update.example_count = static_cast<double>(stats.examples);
  update.sorted_runs = parts_.partitioner->sorted();
  const int64_t num_shards = static_cast<int64_t>(parts_.shards.size());
  std::vector<Status> reduced(num_shards);
  pool_.ParallelFor(num_shards, [&](int64_t s) {
    // The shuffle: every partition's run for shard s goes to its host, as pushes would.
    ShardHost& host = *parts_.shards[s];
    for (int64_t p = 0; p < num_partitions && reduced[s].ok(); ++p) {
      reduced[s] = host.AcceptRun(request.step, p, std::move(outputs[p]->runs[s]));
    }
    if (reduced[s].ok()) reduced[s] = host.Reduce(update);
    if (reduced[s].ok()) host.shard().StoreParamsTo(&params_);  // the next round's pull
  });
  for (const Status& s : reduced) MRTRAIN_RETURN_IF_ERROR(s);
  params_.step = request.step;
  return stats;
}

const std::vector<std::shared_ptr<const data::PartitionData>>& LocalExecutor::SetOf(
    EvalSet set) const {
  return set == EvalSet::kTest ? parts_.test : parts_.validation;
}

bool LocalExecutor::HasEvalSet(EvalSet set) const { return !SetOf(set).empty(); }

Result<api::MapStats> LocalExecutor::Evaluate(EvalSet set) {
  const auto& parts = SetOf(set);
  const int64_t n = static_cast<int64_t>(parts.size());
  std::vector<Result<api::MapStats>> results(n, InternalError("not run"));
  const api::ParamsView view = params_.View();
  pool_.ParallelFor(n, [&](int64_t p) {
    auto mapper = mappers_.Borrow();
    results[p] = EvaluatePartition(*parts[p], config_.num_features, 1024, view, *mapper);
  });
  api::MapStats total;
  for (auto& r : results) {
    if (!r.ok()) return r.status();
    AddStats(*r, &total);
  }
  return total;
}

Result<ModelState> LocalExecutor::Snapshot() {
  ModelState state = params_;
  for (const auto& host : parts_.shards) host->shard().StoreTo(&state);  // params and slots
  return state;
}

}  // namespace mrtrain::runtime
