#include "runtime/master/task_scheduler.h"

namespace mrtrain::runtime {

TaskScheduler::TaskScheduler(int64_t num_partitions, int max_attempts)
    : num_partitions_(num_partitions), max_attempts_(max_attempts < 1 ? 1 : max_attempts) {}

void TaskScheduler::AddWorker(const std::string& worker, int slots) {
  slots_[worker] = slots < 1 ? 1 : slots;
  load_.emplace(worker, 0);
}

void TaskScheduler::RemoveWorker(const std::string& worker) {
  slots_.erase(worker);
  load_.erase(worker);
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second.worker == worker) {
      pending_.insert(it->first);  // re-run elsewhere with a new attempt number
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = sticky_.begin(); it != sticky_.end();) {
    it = it->second == worker ? sticky_.erase(it) : std::next(it);
  }
}

void TaskScheduler::StartRound() {
  pending_.clear();
  running_.clear();
  done_.clear();
  failures_.clear();
  next_attempt_.clear();
  for (auto& [worker, load] : load_) load = 0;
  for (int64_t p = 0; p < num_partitions_; ++p) pending_.insert(p);
}

int TaskScheduler::FreeSlots(const std::string& worker) const {
  return slots_.at(worker) - load_.at(worker);
}

std::string TaskScheduler::PickWorker(int64_t partition) const {
  auto sticky = sticky_.find(partition);
  if (sticky != sticky_.end() && slots_.count(sticky->second) && FreeSlots(sticky->second) > 0) {
    return sticky->second;
  }
  // A partition sticky to a live but busy worker waits for it: moving it would parse it again
  // elsewhere and keep two copies in memory. Only partitions without a live owner move.
  if (sticky != sticky_.end() && slots_.count(sticky->second)) return "";
  std::string best;
  int best_free = 0;
  for (const auto& [worker, slots] : slots_) {
    const int free = FreeSlots(worker);
    if (free > best_free) {
      best = worker;
      best_free = free;
    }
  }
  return best;
}

std::vector<TaskAssignment> TaskScheduler::Assign() {
  std::vector<TaskAssignment> out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const int64_t p = *it;
    std::string worker = PickWorker(p);
    if (worker.empty()) {
      ++it;
      continue;
    }
    const int attempt = next_attempt_[p]++;
    running_[p] = Running{attempt, worker};
    ++load_[worker];
    sticky_[p] = worker;
    out.push_back(TaskAssignment{p, attempt, worker});
    it = pending_.erase(it);
  }
  return out;
}

TaskScheduler::Outcome TaskScheduler::OnDone(int64_t partition, int attempt,
                                             const std::string& worker) {
  if (done_.count(partition)) {
    ++dropped_results_;
    return Outcome::kDuplicate;
  }
  auto it = running_.find(partition);
  if (it == running_.end() || it->second.attempt != attempt || it->second.worker != worker) {
    ++dropped_results_;
    return Outcome::kUnknown;
  }
  --load_[worker];
  running_.erase(it);
  done_.insert(partition);
  return Outcome::kAccepted;
}

Status TaskScheduler::OnFailed(int64_t partition, int attempt, const std::string& worker,
                               const Status& cause) {
  auto it = running_.find(partition);
  if (it == running_.end() || it->second.attempt != attempt || it->second.worker != worker) {
    ++dropped_results_;  // a failure report for an attempt that no longer counts
    return Status::Ok();
  }
  --load_[worker];
  running_.erase(it);
  if (++failures_[partition] >= max_attempts_) {
    return Status(cause.code(), "map task for partition " + std::to_string(partition) + " failed " +
                                    std::to_string(failures_[partition]) +
                                    " times; last on worker " + worker + " (attempt " +
                                    std::to_string(attempt) + "): " + cause.message());
  }
  pending_.insert(partition);
  return Status::Ok();
}

std::optional<std::string> TaskScheduler::StickyWorker(int64_t partition) const {
  auto it = sticky_.find(partition);
  if (it == sticky_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mrtrain::runtime
