#include "runtime/master/task_scheduler.h"

#include <algorithm>

namespace mrtrain::runtime {

TaskScheduler::TaskScheduler(int64_t num_partitions, int max_attempts,
                             std::function<std::string(int64_t)> name_task)
    : num_partitions_(num_partitions),
      max_attempts_(max_attempts < 1 ? 1 : max_attempts),
      name_task_(name_task ? std::move(name_task)
                           : [](int64_t p) { return "partition " + std::to_string(p); }) {}

void TaskScheduler::AddWorker(const std::string& worker, int slots) {
  slots_[worker] = slots < 1 ? 1 : slots;
  load_.emplace(worker, 0);
  if (sticky_.empty()) return;  // nothing placed yet: the first round spreads the partitions
  // A late joiner takes over its share: the partitions move one by one from whichever worker
  // holds the most (ties by name), highest partition first, so the plan is reproducible.
  const int64_t share = num_partitions_ / static_cast<int64_t>(slots_.size());
  std::map<std::string, std::vector<int64_t>> held;
  for (const auto& [p, w] : sticky_) held[w].push_back(p);
  while (static_cast<int64_t>(held[worker].size()) < share) {
    std::string most;
    for (const auto& [w, parts] : held) {
      if (w != worker && (most.empty() || parts.size() > held[most].size())) most = w;
    }
    if (most.empty() || static_cast<int64_t>(held[most].size()) <= share) break;
    const int64_t p = held[most].back();
    held[most].pop_back();
    held[worker].push_back(p);
    sticky_[p] = worker;
  }
}

void TaskScheduler::RemoveWorker(const std::string& worker) {
  slots_.erase(worker);
  load_.erase(worker);
  for (auto it = running_.begin(); it != running_.end();) {
    auto& attempts = it->second;
    attempts.erase(std::remove_if(attempts.begin(), attempts.end(),
                                  [&](const Attempt& a) { return a.worker == worker; }),
                   attempts.end());
    if (attempts.empty()) {
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
  if (!durations_ms_.empty()) last_median_ms_ = MedianMs();
  durations_ms_.clear();
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

void TaskScheduler::Launch(int64_t partition, const std::string& worker, int64_t now_ms,
                           std::vector<TaskAssignment>* out) {
  const int attempt = next_attempt_[partition]++;
  running_[partition].push_back(Attempt{attempt, worker, now_ms});
  ++load_[worker];
  out->push_back(TaskAssignment{partition, attempt, worker});
}

std::vector<TaskAssignment> TaskScheduler::Assign(int64_t now_ms) {
  std::vector<TaskAssignment> out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const int64_t p = *it;
    std::string worker = PickWorker(p);
    if (worker.empty()) {
      ++it;
      continue;
    }
    sticky_[p] = worker;
    Launch(p, worker, now_ms, &out);
    it = pending_.erase(it);
  }
  return out;
}

int64_t TaskScheduler::MedianMs() const {
  std::vector<int64_t> d = durations_ms_;
  auto mid = d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2);
  std::nth_element(d.begin(), mid, d.end());
  return *mid;
}

std::vector<BackupTask> TaskScheduler::Speculate(int64_t now_ms, double multiple, int64_t min_ms) {
  std::vector<BackupTask> out;
  if (multiple <= 0) return out;
  const int64_t median = !durations_ms_.empty() ? MedianMs() : last_median_ms_;
  if (median < 0) return out;  // nothing measured yet: no yardstick
  const int64_t limit = std::max<int64_t>(min_ms, static_cast<int64_t>(multiple * median));
  for (auto& [p, attempts] : running_) {
    if (attempts.size() != 1 || now_ms - attempts[0].started_ms <= limit) continue;
    const Attempt slow = attempts[0];
    std::string best;
    int best_free = 0;
    for (const auto& [worker, slots] : slots_) {
      const int free = FreeSlots(worker);
      if (worker != slow.worker && free > best_free) {
        best = worker;
        best_free = free;
      }
    }
    if (best.empty()) continue;  // no free slot elsewhere yet: the next call tries again
    std::vector<TaskAssignment> launched;
    Launch(p, best, now_ms, &launched);
    ++backups_started_;
    out.push_back(BackupTask{launched[0],
                             RunningTask{p, slow.attempt, slow.worker, slow.started_ms}, median});
  }
  return out;
}

TaskScheduler::Outcome TaskScheduler::OnDone(int64_t partition, int attempt,
                                             const std::string& worker, int64_t now_ms) {
  if (done_.count(partition)) {
    ++dropped_results_;
    return Outcome::kDuplicate;
  }
  auto it = running_.find(partition);
  const Attempt* winner = nullptr;
  if (it != running_.end()) {
    for (const Attempt& a : it->second) {
      if (a.attempt == attempt && a.worker == worker) winner = &a;
    }
  }
  if (!winner) {
    ++dropped_results_;
    return Outcome::kUnknown;
  }
  durations_ms_.push_back(now_ms - winner->started_ms);
  // Every attempt of the task is over as far as the plan goes (a losing one still computes,
  // but its result will be a duplicate).
  for (const Attempt& a : it->second) {
    if (load_.count(a.worker)) --load_[a.worker];
  }
  running_.erase(it);
  done_.insert(partition);
  sticky_[partition] = worker;  // the winner has it cached and was the faster
  return Outcome::kAccepted;
}

Status TaskScheduler::OnFailed(int64_t partition, int attempt, const std::string& worker,
                               const Status& cause, bool counts) {
  auto it = running_.find(partition);
  auto match = [&](const Attempt& a) { return a.attempt == attempt && a.worker == worker; };
  if (it == running_.end() || std::none_of(it->second.begin(), it->second.end(), match)) {
    ++dropped_results_;  // a failure report for an attempt that no longer counts
    return Status::Ok();
  }
  --load_[worker];
  it->second.erase(std::remove_if(it->second.begin(), it->second.end(), match), it->second.end());
  if (counts && ++failures_[partition] >= max_attempts_) {
    return Status(cause.code(), "task for " + name_task_(partition) + " failed " +
                                    std::to_string(failures_[partition]) +
                                    " times; last on worker " + worker + " (attempt " +
                                    std::to_string(attempt) + "): " + cause.message());
  }
  if (it->second.empty()) {
    running_.erase(it);
    pending_.insert(partition);
  }
  return Status::Ok();
}

std::vector<RunningTask> TaskScheduler::Running() const {
  std::vector<RunningTask> out;
  for (const auto& [p, attempts] : running_) {
    for (const Attempt& a : attempts)
      out.push_back(RunningTask{p, a.attempt, a.worker, a.started_ms});
  }
  return out;
}

void TaskScheduler::Prefer(int64_t partition, const std::string& worker) {
  if (slots_.count(worker) && partition >= 0 && partition < num_partitions_) {
    sticky_[partition] = worker;
  }
}

std::optional<std::string> TaskScheduler::StickyWorker(int64_t partition) const {
  auto it = sticky_.find(partition);
  if (it == sticky_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mrtrain::runtime
