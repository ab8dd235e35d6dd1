#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// One map task handed to a worker.
struct TaskAssignment {
  int64_t partition = 0;
  int attempt = 0;
  std::string worker;
};

// Plans the map tasks of one round at a time over the workers that are up: sticky placement
// (a partition goes back to the worker that ran it before, which has it cached), as many tasks
// per worker as it has slots, the rest in later waves as slots free up (no gang scheduling).
// The first attempt of a task to finish wins; later finishes of the same task are duplicates.
// A task that fails max_attempts times fails the round, naming the partition, worker and cause.
// Pure bookkeeping, no clocks or sockets: the master drives it from its event loop.
// Not thread-safe.
class TaskScheduler {
 public:
  TaskScheduler(int64_t num_partitions, int max_attempts);

  // Workers join with a number of task slots, and leave (lost or gone). A lost worker's running
  // tasks become pending again with a new attempt; it keeps no sticky partitions.
  void AddWorker(const std::string& worker, int slots);
  void RemoveWorker(const std::string& worker);
  int num_workers() const { return static_cast<int>(slots_.size()); }

  // Starts a round: every partition pending, attempts from 0. REQUIRES: the last round is done
  // (or none started).
  void StartRound();

  // Assigns pending tasks to free slots, preferring each partition's sticky worker, then the
  // least loaded worker (ties by name, so plans are reproducible).
  std::vector<TaskAssignment> Assign();

  enum class Outcome { kAccepted, kDuplicate, kUnknown };
  // A worker reports a finished attempt. kDuplicate when the partition already finished (a
  // later or speculative attempt): drop its output. kUnknown for attempts the scheduler never
  // handed out or took back from a lost worker (a late result): drop it too.
  Outcome OnDone(int64_t partition, int attempt, const std::string& worker);

  // A worker reports a failed attempt. Returns the error that fails the job once the task has
  // failed max_attempts times; otherwise the task is pending again.
  Status OnFailed(int64_t partition, int attempt, const std::string& worker, const Status& cause);

  bool RoundDone() const { return done_.size() == static_cast<size_t>(num_partitions_); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t dropped_results() const { return dropped_results_; }

  // The worker a partition is sticky to, if any.
  std::optional<std::string> StickyWorker(int64_t partition) const;

 private:
  struct Running {
    int attempt;
    std::string worker;
  };
  std::string PickWorker(int64_t partition) const;
  int FreeSlots(const std::string& worker) const;

  // Constant after construction.
  const int64_t num_partitions_;
  const int max_attempts_;

  std::map<std::string, int> slots_;       // worker -> slots
  std::map<std::string, int> load_;        // worker -> running tasks
  std::map<int64_t, std::string> sticky_;  // partition -> worker that last ran it
  std::set<int64_t> pending_;              // ascending: lower partitions go first
  std::map<int64_t, Running> running_;     // partition -> its live attempt
  std::map<int64_t, int> next_attempt_;    // partition -> next attempt number
  std::map<int64_t, int> failures_;        // partition -> failed attempts this round
  std::set<int64_t> done_;
  int64_t dropped_results_ = 0;
};

}  // namespace mrtrain::runtime
