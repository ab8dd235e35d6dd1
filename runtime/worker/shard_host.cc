#include "runtime/worker/shard_host.h"

#include <string>

namespace mrtrain::runtime {

ShardHost::ShardHost(std::unique_ptr<ReducerShard> shard, int64_t num_partitions, int64_t step)
    : shard_(std::move(shard)), num_partitions_(num_partitions), last_reduced_step_(step) {}

Status ShardHost::AcceptRun(int64_t step, int64_t partition, shuffle::Run run) {
  if (partition < 0 || partition >= num_partitions_) {
    return CorruptionError("shard " + std::to_string(shard_->shard_id()) +
                           ": run for partition " + std::to_string(partition) + " of " +
                           std::to_string(num_partitions_));
  }
  if (step <= last_reduced_step_ || !pending_[step].emplace(partition, std::move(run)).second) {
    ++dropped_runs_;
  }
  return Status::Ok();
}

std::vector<int64_t> ShardHost::Missing(int64_t step) const {
  std::vector<int64_t> missing;
  auto it = pending_.find(step);
  for (int64_t p = 0; p < num_partitions_; ++p) {
    if (it == pending_.end() || it->second.count(p) == 0) missing.push_back(p);
  }
  return missing;
}

Status ShardHost::Reduce(const RoundUpdate& update) {
  if (update.step <= last_reduced_step_) {
    return Status(StatusCode::kAborted, "step " + std::to_string(update.step) +
                                            " was already reduced (last " +
                                            std::to_string(last_reduced_step_) + ")");
  }
  // Steps are applied one after another: a reduce request from before a restart (the shard
  // restored to an older step) must not skip the steps in between.
  if (update.step != last_reduced_step_ + 1) {
    return FailedPreconditionError("shard " + std::to_string(shard_->shard_id()) + " holds step " +
                                   std::to_string(last_reduced_step_) + "; cannot apply step " +
                                   std::to_string(update.step));
  }
  std::vector<int64_t> missing = Missing(update.step);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) {
      list += (i ? ", " : "") + std::to_string(missing[i]);
    }
    if (missing.size() > 10) list += ", ...";
    return FailedPreconditionError("shard " + std::to_string(shard_->shard_id()) + " step " +
                                   std::to_string(update.step) +
                                   ": no run yet from partitions " + list);
  }
  auto& runs = pending_[update.step];
  std::vector<const shuffle::Run*> in_order(num_partitions_);
  for (auto& [p, run] : runs) in_order[p] = &run;
  MRTRAIN_RETURN_IF_ERROR(shard_->Reduce(in_order, update));
  last_reduced_step_ = update.step;
  pending_.erase(pending_.begin(), pending_.upper_bound(update.step));
  return Status::Ok();
}

}  // namespace mrtrain::runtime
