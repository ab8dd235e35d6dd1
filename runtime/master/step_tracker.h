#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "runtime/job/job_setup.h"
#include "runtime/master/task_scheduler.h"
#include "runtime/master/worker_id.h"
#include "runtime/protocol/messages.h"

namespace mrtrain::runtime {

enum class StepKind { kSpec, kLoad, kStart, kMap, kReduce, kEvaluate, kSave, kPredict };

// What a step is, or what a worker's report says it is about. Which fields tell steps apart
// depends on the kind (see StepTracker::Match): a map step by job, set, epoch and round; a reduce
// by job, epoch, round and update; an evaluation by job, set and the update it reads (round); a
// start by job and placement; a save by job and epoch; a load or predict by job and set.
struct StepKey {
  StepKind kind = StepKind::kSpec;
  uint64_t job = 0;
  msg::DataSet set = msg::DataSet::kTrain;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t update = -1;     // reduce: the update the shards commit; -1 in a report: not said
  uint64_t placement = 0;  // start: the placement its StartTrainings carry
};

// One step of a running job that waits for workers: a set of tasks over partitions (load, map,
// evaluate, predict; planned by a TaskScheduler), or one request per target: per worker (spec,
// start) or per reducer shard (reduce, save). The state the StepTracker decides on, and the
// results the master collects into it. Not thread-safe: the master guards it with its lock.
struct TrackedStep {
  using Kind = StepKind;
  Kind kind = Kind::kSpec;
  std::string what;  // "epoch 3 round 5: map tasks", for errors
  uint64_t job = 0;
  msg::DataSet set = msg::DataSet::kTrain;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t update = 0;      // reduce: the step (update count) the shards must commit
  uint64_t placement = 0;  // start: the placement its StartTrainings carry
  bool admitting = false;  // spec/start of late joiners: a failure leaves one out

  // Task steps: the plan (the master's, sticky across steps).
  TaskScheduler* scheduler = nullptr;
  // Per-target steps: the targets still to answer, each with the worker that must answer for
  // it (itself for spec and start, the shard's host for reduce and save: a shard that moved
  // answers only from its new host).
  std::map<int64_t, WorkerId> waiting;
  std::map<int64_t, int> failures;  // save: failed writes by shard

  // Results, by partition or shard.
  std::vector<api::MapStats> stats;
  std::vector<PartitionSummary> summaries;
  std::vector<msg::ShardSaved> saved;
  std::vector<msg::PredictDone> predicted;  // by partition
  std::map<WorkerId, msg::JobReady> ready;  // by the worker that answered

  bool finished = false;
  Status status;  // once finished

  StepKey Key() const { return StepKey{kind, job, set, epoch, round, update, placement}; }
};

// Something the master is to do for its steps, decided by the StepTracker: the I/O (sends, the
// step's promise, closing a connection) is the master's.
struct StepAction {
  enum class Type {
    kSendTask,    // send task `index` (attempt `attempt`) of `step` to `worker`
    kSendTarget,  // send `step`'s request for target `index` (a worker or shard)
    kFinish,      // `step` is done with `status`: wake whoever waits for it
    kDropWorker,  // declare `worker` lost (`why`): it holds a step past its bound
  };
  Type type = Type::kFinish;
  TrackedStep* step = nullptr;
  int64_t index = 0;
  int attempt = 0;
  WorkerId worker;
  Status status;
  std::string why;
  std::optional<BackupTask> backup_of;  // kSendTask: the slow attempt it backs up
};
using StepActions = std::vector<StepAction>;

// The master's round logic as a pure state machine: which steps run (several at once with
// training.staleness: a round's map step beside the previous round's reduce), which step a
// worker's report is about, and what each event means: which tasks or requests to send, when a
// step is done or failed, what a timeout does. No I/O, no locks, no clock: time comes in as
// arguments (the transport's clock, which tests fake), and every decision comes back as
// StepActions for the master to carry out. Steps that run together fail together.
class StepTracker {
 public:
  // The steps that run now (RunSteps); they live on the caller's stack until End().
  void Begin(std::vector<TrackedStep*> steps) { running_ = std::move(steps); }
  void End() { running_.clear(); }
  const std::vector<TrackedStep*>& running() const { return running_; }
  // The running step of `kind`, or nullptr (at most one of each kind runs).
  TrackedStep* Running(StepKind kind) const;

  // The running, unfinished step `report` is about, or nullptr (a late or foreign report,
  // counted in dropped()).
  TrackedStep* Match(const StepKey& report);

  // What `step` starts with: its first tasks, or its request to every target.
  StepActions Launch(TrackedStep& step, int64_t now_ms);
  // Tasks for free slots.
  StepActions Pump(TrackedStep& step, int64_t now_ms);

  // Task `task` (attempt `attempt`) of `step` finished on `worker`. `*accepted` says whether its
  // result counts (not a duplicate, not an attempt taken back): only then is it recorded.
  StepActions OnTaskDone(TrackedStep& step, int64_t task, int attempt, WorkerId worker,
                         int64_t now_ms, bool* accepted);
  // Target `target` of `step` answered from `worker`: it counts (`*accepted`) only when the
  // step waits for it from that worker.
  StepActions OnTargetDone(TrackedStep& step, int64_t target, WorkerId worker, bool* accepted);
  // Whether `worker` answering for `target` is what `step` waits for.
  bool Awaits(const TrackedStep& step, int64_t target, WorkerId worker) const;

  // A task attempt failed; the step fails once the task failed max_attempts times (`context`
  // is added to that error). `counts` as in TaskScheduler::OnFailed.
  StepActions OnTaskFailed(TrackedStep& step, int64_t task, int attempt, WorkerId worker,
                           const Status& cause, bool counts, const std::string& context,
                           int64_t now_ms);
  // Target `target`'s request failed with `error`: an admitting step leaves it out, a save
  // writes a shard again until it failed `retries` times, anything else fails the step.
  StepActions OnTargetFailed(TrackedStep& step, int64_t target, const Status& error, int retries);
  // Sending target `target`'s request failed (its worker is gone).
  StepActions OnSendFailed(TrackedStep& step, int64_t target, const Status& error);

  // `worker` was lost (the master removed it from its schedulers). A worker of the job
  // (`in_job`): the tasks it ran go elsewhere, and steps of setup stop waiting for it. A joiner
  // not in the job yet: the steps admitting it stop waiting for it.
  StepActions OnWorkerLost(WorkerId worker, bool in_job, int64_t now_ms);
  // Every running step fails with `error`.
  StepActions FailAll(const Status& error);

  // Names what a step waits for, in timeout messages: task `index`'s attempt `attempt`, or
  // target `index` (attempt -1).
  using Describe = std::function<std::string(const TrackedStep&, int64_t index, int attempt)>;
  // `step` ran past its bound (`limit`, for messages). The workers it still waits for are stuck
  // (a hung thread keeps heartbeats going): each is to be dropped, so its tasks run elsewhere
  // or its shards are restored elsewhere. A step waiting for nobody, or when the job has failed
  // already (`job_failed`), fails instead.
  StepActions OnTimeout(TrackedStep& step, bool job_failed, const std::string& limit,
                        const Describe& describe);
  // Whether a running step is unfinished (and so needs another bound).
  bool AnyUnfinished() const;
  // Backup attempts of slow tasks of the running task step (TaskScheduler::Speculate).
  StepActions Speculate(int64_t now_ms, double multiple, int64_t min_ms);

  // Reports dropped since the start: late, duplicate or of another step.
  int64_t dropped() const { return dropped_; }
  void CountDropped() { ++dropped_; }

 private:
  // Finishes `step`; a failure finishes the steps running beside it with the same error.
  void FinishInto(TrackedStep& step, const Status& status, StepActions* out);

  std::vector<TrackedStep*> running_;
  int64_t dropped_ = 0;
};

}  // namespace mrtrain::runtime
