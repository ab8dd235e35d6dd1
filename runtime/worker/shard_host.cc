#include "runtime/worker/shard_host.h"

#include <optional>
#include <set>
#include <string>

namespace mrtrain::runtime {

ShardHost::ShardHost(std::unique_ptr<ReducerShard> shard, int64_t num_partitions, int64_t step,
                     int64_t staleness)
    : shard_(std::move(shard)),
      num_partitions_(num_partitions),
      staleness_(staleness),
      last_reduced_step_(step) {}

namespace {

// The received nodes of one step, for ChooseCover.
std::set<shuffle::TreeNode> NodesOf(const std::map<shuffle::TreeNode, shuffle::Run>& runs) {
  std::set<shuffle::TreeNode> nodes;
  for (const auto& [node, run] : runs) nodes.insert(node);
  return nodes;
}

}  // namespace

Status ShardHost::AcceptRun(int64_t step, shuffle::TreeNode node, shuffle::Run run) {
  if (!shuffle::IsNodeOf(node, num_partitions_)) {
    return CorruptionError("shard " + std::to_string(shard_->shard_id()) +
                           ": run for partitions [" + std::to_string(node.lo) + ", " +
                           std::to_string(node.lo + node.count) +
                           "), which is not a node of the reduction tree over " +
                           std::to_string(num_partitions_) + " partitions");
  }
  if (step <= last_reduced_step_ || !pending_[step].emplace(node, std::move(run)).second) {
    ++dropped_runs_;
  }
  return Status::Ok();
}

std::vector<int64_t> ShardHost::Missing(int64_t step) const {
  std::vector<int64_t> missing;
  auto it = pending_.find(step);
  shuffle::ChooseCover(it == pending_.end() ? std::set<shuffle::TreeNode>() : NodesOf(it->second),
                       num_partitions_, &missing);
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
  auto& runs = pending_[update.step];
  std::vector<int64_t> missing;
  std::optional<std::vector<shuffle::TreeNode>> cover =
      shuffle::ChooseCover(NodesOf(runs), num_partitions_, &missing);
  if (!cover) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) {
      list += (i ? ", " : "") + std::to_string(missing[i]);
    }
    if (missing.size() > 10) list += ", ...";
    return FailedPreconditionError("shard " + std::to_string(shard_->shard_id()) + " step " +
                                   std::to_string(update.step) + ": no run yet from partitions " +
                                   list);
  }
  std::vector<const shuffle::Run*> in_order;
  for (const shuffle::TreeNode& node : *cover) in_order.push_back(&runs.at(node));
  // Kept only when stale reads are on: with staleness 0 a step costs nothing extra. The copy
  // the pulls of this version were served from, if any, is the one kept.
  std::shared_ptr<const shuffle::Run> before;
  if (staleness_ > 0) {
    before = latest_ ? latest_ : std::make_shared<const shuffle::Run>(shard_->ParamsRun());
  }
  MRTRAIN_RETURN_IF_ERROR(shard_->Reduce(in_order, *cover, update));
  latest_.reset();
  if (staleness_ > 0) {
    older_[last_reduced_step_] = std::move(before);
    older_.erase(older_.begin(), older_.lower_bound(update.step - staleness_));
  }
  last_reduced_step_ = update.step;
  pending_.erase(pending_.begin(), pending_.upper_bound(update.step));
  return Status::Ok();
}

Result<std::shared_ptr<const shuffle::Run>> ShardHost::ParamsAfter(int64_t updates) const {
  if (updates == last_reduced_step_) {
    if (!latest_) latest_ = std::make_shared<const shuffle::Run>(shard_->ParamsRun());
    return latest_;
  }
  if (auto it = older_.find(updates); it != older_.end()) return it->second;
  const std::string shard = "reducer shard " + std::to_string(shard_->shard_id());
  if (updates > last_reduced_step_) {
    return FailedPreconditionError(shard + " holds step " + std::to_string(last_reduced_step_) +
                                   "; the parameters after update " + std::to_string(updates) +
                                   " are not there yet");
  }
  const int64_t oldest = older_.empty() ? last_reduced_step_ : older_.begin()->first;
  return FailedPreconditionError(
      shard + " keeps the parameters after updates " + std::to_string(oldest) + " to " +
      std::to_string(last_reduced_step_) + " (training.staleness " + std::to_string(staleness_) +
      "); those after update " + std::to_string(updates) + " are no longer kept");
}

}  // namespace mrtrain::runtime
