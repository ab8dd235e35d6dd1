#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// One task attempt handed to a worker.
struct TaskAssignment {
  int64_t partition = 0;
  int attempt = 0;
  std::string worker;
};

// An attempt still running, as Running() and Speculate() describe it.
struct RunningTask {
  int64_t partition = 0;
  int attempt = 0;
  std::string worker;
  int64_t started_ms = 0;  // on the caller's clock
};

// A backup attempt Speculate() started, and the attempt it backs up.
struct BackupTask {
  TaskAssignment backup;
  RunningTask slow;
  int64_t median_ms = 0;  // of the finished tasks it was measured against
};

// Plans the tasks of one round at a time over the workers that are up: sticky placement
// (a partition goes back to the worker that ran it before, which has it cached), as many tasks
// per worker as it has slots, the rest in later waves as slots free up (no gang scheduling).
// The first attempt of a task to finish wins (and its worker becomes the partition's sticky
// one); later finishes of the same task are duplicates. A task that fails max_attempts times
// fails the round, naming the partition, worker and cause. A task whose only attempt runs much
// longer than the round's median gets a backup attempt on another worker (Speculate): one at a
// time, so a task has at most two attempts running.
// Pure bookkeeping, no clocks or sockets: the master drives it from its event loop and passes
// the time in. Not thread-safe.
class TaskScheduler {
 public:
  TaskScheduler(int64_t num_partitions, int max_attempts);

  // Workers join with a number of task slots, and leave (lost or gone). A worker that joins
  // while partitions are already placed takes over its share of them (the most loaded workers
  // give up their highest partitions), so a late joiner gets work. A lost worker's running
  // tasks become pending again with a new attempt; it keeps no sticky partitions.
  void AddWorker(const std::string& worker, int slots);
  void RemoveWorker(const std::string& worker);
  int num_workers() const { return static_cast<int>(slots_.size()); }

  // Starts a round: every partition pending, attempts from 0. REQUIRES: the last round is done
  // (or none started).
  void StartRound();

  // Assigns pending tasks to free slots, preferring each partition's sticky worker, then the
  // least loaded worker (ties by name, so plans are reproducible). `now_ms` starts their clocks.
  std::vector<TaskAssignment> Assign(int64_t now_ms = 0);

  // Backup attempts for tasks whose only attempt has run longer than `multiple` times the
  // median duration of this round's finished tasks (the previous round's before any has
  // finished) and at least `min_ms`: each on the least loaded other worker with a free slot.
  std::vector<BackupTask> Speculate(int64_t now_ms, double multiple, int64_t min_ms);

  enum class Outcome { kAccepted, kDuplicate, kUnknown };
  // A worker reports a finished attempt. kDuplicate when the partition already finished (a
  // later or speculative attempt): drop its output. kUnknown for attempts the scheduler never
  // handed out or took back from a lost worker (a late result): drop it too.
  Outcome OnDone(int64_t partition, int attempt, const std::string& worker, int64_t now_ms = 0);

  // A worker reports a failed attempt. Returns the error that fails the job once the task has
  // failed max_attempts times; otherwise the task is pending again (unless another attempt of
  // it still runs). A failure that is not the task's fault (`counts` false: a reducer shard's
  // host could not be reached) only makes it pending again.
  Status OnFailed(int64_t partition, int attempt, const std::string& worker, const Status& cause,
                  bool counts = true);

  bool RoundDone() const { return done_.size() == static_cast<size_t>(num_partitions_); }
  // Partitions with an attempt running.
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  std::vector<RunningTask> Running() const;
  int64_t dropped_results() const { return dropped_results_; }
  int64_t backups_started() const { return backups_started_; }

  // The worker a partition is sticky to, if any.
  std::optional<std::string> StickyWorker(int64_t partition) const;

 private:
  struct Attempt {
    int attempt;
    std::string worker;
    int64_t started_ms;
  };
  std::string PickWorker(int64_t partition) const;
  int FreeSlots(const std::string& worker) const;
  void Launch(int64_t partition, const std::string& worker, int64_t now_ms,
              std::vector<TaskAssignment>* out);
  int64_t MedianMs() const;

  // Constant after construction.
  const int64_t num_partitions_;
  const int max_attempts_;

  std::map<std::string, int> slots_;                 // worker -> slots
  std::map<std::string, int> load_;                  // worker -> running attempts
  std::map<int64_t, std::string> sticky_;            // partition -> worker that last ran it
  std::set<int64_t> pending_;                        // ascending: lower partitions go first
  std::map<int64_t, std::vector<Attempt>> running_;  // partition -> its live attempts
  std::map<int64_t, int> next_attempt_;              // partition -> next attempt number
  std::map<int64_t, int> failures_;                  // partition -> failed attempts this round
  std::set<int64_t> done_;
  std::vector<int64_t> durations_ms_;  // of this round's finished tasks
  int64_t last_median_ms_ = -1;        // of the previous round's; -1 before any
  int64_t dropped_results_ = 0;
  int64_t backups_started_ = 0;
};

}  // namespace mrtrain::runtime
