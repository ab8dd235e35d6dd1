#pragma once

// The master's internals, shared by its two halves: master_service.cc (lifecycle and the
// transport thread: workers and clients, liveness, speculation, the journal) and master_job.cc
// (the job thread: setup, placement, the steps of a round, recovery). Include master_service.h,
// not this.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "engine/base/log.h"
#include "engine/base/mutex.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/job/job_setup.h"
#include "runtime/job/shipped_job.h"
#include "runtime/master/job_journal.h"
#include "runtime/master/master_metrics.h"
#include "runtime/master/master_service.h"
#include "runtime/master/round_executor.h"
#include "runtime/master/step_tracker.h"
#include "runtime/master/task_scheduler.h"
#include "shuffle/merge/tree_sum.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {
namespace master_internal {

// JSON of user strings (job names, error messages quoting data) for status and submit clients.
// A string that is not UTF-8 makes dump() throw; its bad bytes become U+FFFD instead, so one
// job's bytes can never take the status page or the master down.
inline std::string DumpUserJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Each worker gets two tasks per slot: the second waits in its queue, so a slot never idles for
// the round trip of a MapTaskDone and the next RunMapTask.
inline constexpr int kTasksPerSlot = 2;

// schedulers_[kMapTasks] plans the map tasks, one per node of the partitions' reduction tree;
// schedulers_[set] the load and evaluation tasks of each data set, one per partition.
inline constexpr int kMapTasks = 3;

struct WorkerEntry {
  WorkerId id;
  std::string name;
  int slots = 1;
  std::string data_address;
  std::shared_ptr<Connection> connection;
  int64_t last_heard = 0;                          // the liveness tick of its latest message
  std::chrono::steady_clock::time_point heard_at;  // when that was, for the status page
};

// A step as the job thread runs it: the StepTracker's state (what it waits for, its results),
// and the master's I/O for it: how to send task (partition, attempt) to a worker or the request
// of a target (a worker for spec and start, a shard for reduce and save), and the promise the
// job thread waits on. Lives on the job thread's stack; the transport thread reaches it only
// through Impl::tracker_ under Impl::mu_, and so does the job thread until the step is done.
// The launch functions run under Impl::mu_ and only queue their sends (see Impl::Locked).
struct Step : TrackedStep {
  std::function<Status(const WorkerEntry&, int64_t partition, int attempt)> launch_task;
  std::function<Status(int64_t target)> launch_target;
  std::promise<Status> done;
};

// Where a recovery takes a job back to: the last committed checkpoint (or the job's start).
struct RestorePoint {
  int64_t epochs = 0;
  int64_t step = 0;
};

struct QueuedJob {
  uint64_t id = 0;
  msg::JobSpecText text;
  std::shared_ptr<JobListener> listener;
};

// What `mrtrain status` shows of a job.
struct JobRecord {
  std::string name;
  std::string state = "queued";
  std::string error;
  int64_t epochs_done = 0;
  int64_t epochs = 0;
};

}  // namespace master_internal

// Only the master's two .cc files include this header.
using master_internal::DumpUserJson;
using master_internal::JobRecord;
using master_internal::kMapTasks;
using master_internal::kTasksPerSlot;
using master_internal::QueuedJob;
using master_internal::RestorePoint;
using master_internal::Step;
using master_internal::WorkerEntry;

class MasterService::Impl : public std::enable_shared_from_this<Impl> {
 public:
  // The pieces master_service.cc and master_job.cc share (master_internal).
  using WorkerEntry = master_internal::WorkerEntry;
  using Step = master_internal::Step;
  using RestorePoint = master_internal::RestorePoint;
  using QueuedJob = master_internal::QueuedJob;
  using JobRecord = master_internal::JobRecord;

  Impl(Transport* transport, MasterOptions options)
      : transport_(transport), options_(std::move(options)) {}

  Result<std::string> Start() EXCLUDES(mu_);
  uint64_t Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener) EXCLUDES(mu_);
  void Cancel(uint64_t job_id) EXCLUDES(mu_);
  std::string StatusJson() const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return StatusJsonLocked();
  }
  int64_t control_bytes() const { return control_bytes_.load(); }
  std::optional<std::string> HistoryJson(uint64_t job_id) const EXCLUDES(mu_);
  std::string MetricsText() const EXCLUDES(mu_);
  // A job's progress, for the status page and /metrics (JobProgress calls them).
  void RecordRound(uint64_t job, int64_t epoch, int64_t round, int64_t rounds, int64_t epochs,
                   double elapsed_sec) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    metrics_.OnRound(job, epoch, round, rounds, epochs, elapsed_sec);
  }
  void RecordEpoch(uint64_t job, const EpochReport& report) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    metrics_.OnEpoch(job, report);
  }
  // Sends `m` to a submit or status client, in order with what the master queued for it.
  template <typename M>
  void SendToClient(const std::shared_ptr<Connection>& c, const M& m) EXCLUDES(mu_) {
    Locked lock(this);
    Status queued = QueueLocked(c, m, /*count=*/false);
    if (!queued.ok()) log_->error("cannot update the submitter: {}", queued.ToString());
  }
  void Stop(bool shutdown_workers, int exit_code) EXCLUDES(mu_);

  // ---- Used by the job's RoundExecutor (on the job thread) ----
  Result<api::MapStats> MapRound(const RoundRequest& request) EXCLUDES(mu_);
  Status ReduceRound(const RoundRequest& request, int64_t examples) EXCLUDES(mu_);
  // Both at once (training.staleness >= 1, RoundExecutor::MapAndReduce): the map tasks of `map`
  // and the reduce of `reduce`, whose map tasks counted `examples` examples.
  Result<api::MapStats> MapAndReduce(const RoundRequest& map, const RoundRequest& reduce,
                                     int64_t examples) EXCLUDES(mu_);
  Result<api::MapStats> EvaluateSet(msg::DataSet set, int64_t step) EXCLUDES(mu_);
  Status SaveShards(CheckpointManifest manifest, CheckpointDir& dir) EXCLUDES(mu_);
  // After a failure of a step: puts the job back together if it can (see RoundExecutor) and
  // returns the epochs done at the restore point.
  Result<RestorePoint> Recover(const Status& failure) EXCLUDES(mu_);
  // The job's peak memory so far: the master's own and what its workers last reported.
  JobPeakRss PeakRss() const EXCLUDES(mu_);
  bool HasSet(msg::DataSet set) const EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return partitions_[static_cast<int>(set)] > 0;
  }

 private:
  // Holds mu_ for a scope. Leaving it releases mu_ and then does the I/O the scope queued
  // (QueueLocked, QueueCloseLocked, QueueJournalLocked; see Flush): no lock is held across a
  // send, which can block on a slow peer, or a journal fsync, while the transport thread
  // needs mu_ for every message. A scope that waits on queue_cv_ queues nothing before it.
  class SCOPED_CAPABILITY Locked {
   public:
    explicit Locked(Impl* impl) ACQUIRE(impl->mu_) NO_THREAD_SAFETY_ANALYSIS : impl_(impl) {
      impl_->mu_.Lock();
    }
    ~Locked() RELEASE() NO_THREAD_SAFETY_ANALYSIS { impl_->UnlockAndFlush(); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

   private:
    Impl* const impl_;
  };
  // Releases mu_; then, unless another thread is at it, does the queued I/O in queue order
  // (one thread at a time, so frames of a connection go out in the order they were queued,
  // whichever thread queued them) until none is left.
  void UnlockAndFlush() RELEASE(mu_);
  // Queues `m` for `c` (see Locked). kInvalidArgument when it cannot be encoded; a failure to
  // send is logged (the connection is then closing, and its close is handled as usual).
  template <typename M>
  Status QueueLocked(const std::shared_ptr<Connection>& c, const M& m, bool count = true)
      REQUIRES(mu_) {
    MRTRAIN_ASSIGN_OR_RETURN(std::string payload, Encode(m));
    if (count) control_bytes_ += static_cast<int64_t>(payload.size());
    outbox_.push_back([c, payload = std::move(payload)]() mutable {
      Status sent = c->Send(M::kType, std::move(payload));
      if (!sent.ok()) {
        Logger("master")->debug("cannot send {} to {}: {}",
                                MessageTypeName(static_cast<uint16_t>(M::kType)), c->peer(),
                                sent.ToString());
      }
    });
    return Status::Ok();
  }
  void QueueCloseLocked(const std::shared_ptr<Connection>& c) REQUIRES(mu_) {
    outbox_.push_back([c] { c->Close(); });
  }
  // Queues a write of the journal (which has to exist); done in order with the sends, so a
  // reply that says a job is queued goes out after the job is on disk.
  void QueueJournalLocked(std::function<void(JobJournal&)> write) REQUIRES(mu_);

  // ---- Transport thread ----
  ConnectionHandler Handler();
  void OnMessage(const std::shared_ptr<Connection>& c, MessageType type, std::string payload)
      EXCLUDES(mu_);
  void OnClosed(const std::shared_ptr<Connection>& c, const Status& status) EXCLUDES(mu_);
  void OnWorkerLostLocked(WorkerId id, const std::string& why) REQUIRES(mu_);
  // A job that ended (or was cancelled while queued) no longer belongs to its submit client:
  // the client closing its connection afterwards is the normal end of a submit.
  void ForgetSubmitterLocked(uint64_t job_id) REQUIRES(mu_);
  void ScheduleLivenessCheck();
  void CheckLiveness() EXCLUDES(mu_);
  // A report of task `partition` of the step `report` names, from `worker`: `apply` records
  // its result when the tracker accepts it.
  void OnTaskDoneLocked(const StepKey& report, int64_t partition, int attempt, WorkerId worker,
                        const std::function<void(Step&)>& apply) REQUIRES(mu_);
  // `worker` sent it: for reduce and save steps it must be the shard's host (a shard that
  // moved answers only from its new host).
  void OnTargetDoneLocked(const StepKey& report, int64_t target, WorkerId worker,
                          const std::function<void(Step&)>& apply) REQUIRES(mu_);
  void OnTaskFailedLocked(const msg::TaskFailed& failed, WorkerId worker) REQUIRES(mu_);
  // Carries out what the tracker decided: queues sends (done once mu_ is released, see
  // Locked), wakes the job thread for finished steps, drops stuck workers.
  void ApplyLocked(const StepActions& actions) REQUIRES(mu_);
  // What a timed-out step waits for, in the tracker's messages (StepTracker::Describe).
  std::string DescribeWaitLocked(const TrackedStep& step, int64_t index, int attempt) const
      REQUIRES(mu_);
  void ArmStepTimer(uint64_t token);
  void OnStepTimer(uint64_t token) EXCLUDES(mu_);
  // "task for data.train partition 3, rows [300, 400) (attempt 1)", for logs and errors; map
  // tasks: "task for data.train partitions [4, 6), rows [400, 600) (attempt 1)".
  std::string DescribeTask(const TrackedStep& step, int64_t partition, int attempt) const
      REQUIRES(mu_);
  void ScheduleSpeculation();
  void Speculate() EXCLUDES(mu_);
  std::string StatusJsonLocked() const REQUIRES(mu_);
  // Adds a worker's heartbeat age and current tasks to its status entry (master_status.cc).
  void AddWorkerStatusLocked(WorkerId id, const WorkerEntry& w, nlohmann::json* entry) const
      REQUIRES(mu_);
  // A worker's name, for metrics labels ("?" for one that is gone).
  std::string WorkerName(WorkerId id) const REQUIRES(mu_) {
    auto it = workers_.find(id);
    return it == workers_.end() ? "?" : it->second.name;
  }
  template <typename M>
  Status SendToWorkerLocked(WorkerId id, const M& m) REQUIRES(mu_) {
    auto it = workers_.find(id);
    if (it == workers_.end()) return UnavailableError("worker " + id.ToString() + " is gone");
    return QueueLocked(it->second.connection, m);
  }

  // ---- Job thread ----
  void JobLoop() EXCLUDES(mu_);
  void RunJob(QueuedJob& job) EXCLUDES(mu_);
  Result<TrainingResult> Train(QueuedJob& job, jobs::JobSpec* spec_out) EXCLUDES(mu_);
  // A predict job (spec.predict_model): data.train's partitions are loaded where they are
  // placed, scored there into part files, and the manifest is written last (master_predict.cc).
  Result<TrainingResult> Predict(const QueuedJob& job, const jobs::JobSpec& spec) EXCLUDES(mu_);
  // Waits for the workers, has each parse the job's spec and open its datasets, and records
  // their partition counts.
  Status SetUpWorkers(const QueuedJob& job) EXCLUDES(mu_);
  Status RunStep(Step& step) EXCLUDES(mu_);
  // Runs steps of different kinds at once, under one step_timeout, until all are finished; the
  // first failure ends the others (StepTracker::Finish) and is returned.
  Status RunSteps(const std::vector<Step*>& steps) EXCLUDES(mu_);
  // The running step of `kind`, or nullptr.
  Step* RunningLocked(Step::Kind kind) const REQUIRES(mu_) {
    return static_cast<Step*>(tracker_.Running(kind));
  }
  // A round's steps, ready for RunSteps (MapRound, ReduceRound, MapAndReduce).
  void MakeMapStep(const RoundRequest& request, Step* step) EXCLUDES(mu_);
  void MakeReduceStep(const RoundRequest& request, int64_t examples, Step* step) EXCLUDES(mu_);
  // Admits the workers that registered since the last round (see AdmitJoiners).
  Status AdmitNewWorkers() EXCLUDES(mu_);
  // Sends what `step` starts with: its first tasks, or its request to every target.
  void LaunchLocked(Step& step) REQUIRES(mu_);
  // Runs `step` as one round of tasks over `set`, planned by schedulers_[scheduler].
  Status RunTasks(msg::DataSet set, int scheduler, Step& step) EXCLUDES(mu_);
  void PrepareTasksLocked(msg::DataSet set, int scheduler, Step& step) REQUIRES(mu_);
  // The task index of a map task's node (partition, partition_count), or -1 when the node is
  // not one of this job's map tasks (a stale or foreign report).
  int64_t MapTaskOf(int64_t partition, int64_t partition_count) const REQUIRES(mu_);
  Status AwaitWorkers() EXCLUDES(mu_);
  // Queues a job, recording it in the journal.
  void EnqueueLocked(QueuedJob job) REQUIRES(mu_);
  // Writes the journal's list of unfinished jobs (when there is a journal).
  void PersistLocked() REQUIRES(mu_);
  // Queues the unfinished jobs of the journal (--recover).
  Status RecoverJobs() EXCLUDES(mu_);
  // Sets the job up on registered workers that are not in it yet (they joined late or the
  // master waits for one because all were lost); those that fail it are left out. With
  // `start`, they also build the model (the shards stay where they are).
  Status AdmitJoiners(bool start) EXCLUDES(mu_);
  // Places the reducer shards round-robin over the job's workers and has every worker build
  // the model, the shard hosts restoring their shards from the checkpoint after `epochs`
  // epochs (`step` updates; 0 = the initial parameters).
  Status PlaceShards(int64_t epochs, int64_t step) EXCLUDES(mu_);
  // What `worker` is told to build: the data's shape, the shards it hosts (restored from the
  // checkpoint after `epochs` epochs, `step` updates) and where every shard lives.
  msg::StartTraining StartTrainingFor(WorkerId worker, int64_t epochs, int64_t step) const
      REQUIRES(mu_);
  // Marks the job's error recoverable or not, completing the current step with it.
  void FailJobLocked(const Status& error, bool recoverable) REQUIRES(mu_);
  // Declares worker `id` lost: closes its connection and re-plans around it.
  void DropWorkerLocked(WorkerId id, const std::string& why) REQUIRES(mu_);
  Status LoadSet(msg::DataSet set, const jobs::JobSpec& spec,
                 std::vector<PartitionSummary>* summaries) EXCLUDES(mu_);

  // Constant after Start.
  Transport* const transport_;
  const MasterOptions options_;
  const std::shared_ptr<spdlog::logger> log_ = Logger("master");
  std::atomic<int64_t> control_bytes_{0};
  std::unique_ptr<JobJournal> journal_;  // set by Start when state_dir is; written by Flush only
  std::thread job_thread_;               // started by Start, joined by Stop

  mutable Mutex mu_;
  CondVar queue_cv_;  // a job queued, a worker registered, a cancel or the stop
  // I/O queued under mu_, done after it is released (see Locked).
  std::vector<std::function<void()>> outbox_ GUARDED_BY(mu_);
  bool flushing_ GUARDED_BY(mu_) = false;  // a thread is doing the outbox's I/O
  bool stopping_ GUARDED_BY(mu_) = false;
  std::deque<QueuedJob> queue_ GUARDED_BY(mu_);
  uint64_t next_job_id_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, JobRecord> records_ GUARDED_BY(mu_);
  std::map<WorkerId, WorkerEntry> workers_ GUARDED_BY(mu_);
  uint32_t next_worker_id_ GUARDED_BY(mu_) = 1;
  std::map<const Connection*, WorkerId> worker_of_ GUARDED_BY(mu_);
  // submit client -> its job, until the job ends
  std::map<const Connection*, uint64_t> submitter_of_ GUARDED_BY(mu_);
  int64_t total_recoveries_ GUARDED_BY(mu_) = 0;  // since the master started
  // shard host -> mappers' failures to reach it
  std::map<WorkerId, int> unreachable_reports_ GUARDED_BY(mu_);
  // speculative attempts started, since the master started
  int64_t backup_tasks_ GUARDED_BY(mu_) = 0;
  MasterMetrics metrics_ GUARDED_BY(mu_);  // by job and worker, for the status page

  // The running job; written by the job thread under mu_.
  uint64_t active_job_ GUARDED_BY(mu_) = 0;
  bool cancelled_ GUARDED_BY(mu_) = false;
  Status job_error_ GUARDED_BY(mu_);  // set when the job cannot go on as it is
  // job_error_ is a lost shard host: Recover() can mend it
  bool recoverable_ GUARDED_BY(mu_) = false;
  int recoveries_ GUARDED_BY(mu_) = 0;          // since the last committed checkpoint
  int max_recoveries_ GUARDED_BY(mu_) = 4;      // the spec's max_attempts
  std::set<WorkerId> refused_ GUARDED_BY(mu_);  // workers that could not set the job up
  // [shard] -> its host's data address
  std::vector<std::string> shard_addresses_ GUARDED_BY(mu_);
  uint64_t placement_ GUARDED_BY(mu_) = 0;  // placements of the shards so far (all jobs)
  // The restore point of a recovery: the last committed checkpoint, or where the job started.
  int64_t committed_epochs_ GUARDED_BY(mu_) = 0;
  int64_t committed_step_ GUARDED_BY(mu_) = 0;
  // What a worker needs to join the job: its spec, and the data's shape.
  msg::JobSpecText job_text_ GUARDED_BY(mu_);
  api::DataShape shape_ GUARDED_BY(mu_);
  int num_reducers_ GUARDED_BY(mu_) = 0;
  std::vector<WorkerId> job_workers_ GUARDED_BY(mu_);  // ascending
  // The peak RSS each worker reported with its map tasks of the running job (the highest), by
  // id; kept for a worker lost since, whose peak still counts.
  std::map<WorkerId, JobPeakRss::Worker> worker_peaks_ GUARDED_BY(mu_);
  std::vector<WorkerId> shard_hosts_ GUARDED_BY(mu_);  // [shard] -> worker
  // by DataSet, then kMapTasks; sticky across steps
  std::unique_ptr<TaskScheduler> schedulers_[4] GUARDED_BY(mu_);
  // Partitions per map task (a power of two), fixed at the job's start (NodeCountFor).
  int64_t map_node_count_ GUARDED_BY(mu_) = 1;
  int64_t partitions_[3] GUARDED_BY(mu_) = {0, 0, 0};
  // by DataSet: [p] = rows before partition p, then all
  std::vector<int64_t> first_rows_[3] GUARDED_BY(mu_);
  std::vector<std::string> shard_ranges_ GUARDED_BY(mu_);  // [shard]: its keys, for logs
  // advanced by the speculation ticker: task durations on the transport's clock
  int64_t clock_ms_ GUARDED_BY(mu_) = 0;
  int64_t step_count_ GUARDED_BY(mu_) = 0;  // updates applied
  // The steps RunSteps runs now (one, or a map step and the previous round's reduce) and the
  // decisions about them; it also counts the results it dropped. Its steps are all Steps.
  StepTracker tracker_ GUARDED_BY(mu_);
  // counts RunSteps calls, so a timer knows whether its steps still run
  uint64_t step_token_ GUARDED_BY(mu_) = 0;
  TimerHandle step_timer_ GUARDED_BY(mu_);  // the running steps' bound
  int64_t tick_ GUARDED_BY(mu_) = 0;        // liveness checks so far (heartbeat_interval apart)
};

// A job's observer on the master: records its progress in the master's metrics, then passes
// it on to the submitter's listener (if any). Lives on the job thread's stack.
class JobProgress : public TrainingObserver {
 public:
  JobProgress(MasterService::Impl* master, uint64_t job, TrainingObserver* listener)
      : master_(master), job_(job), listener_(listener) {}
  void OnRound(int64_t epoch, int64_t round, int64_t rounds, int64_t epochs,
               double elapsed_sec) override {
    master_->RecordRound(job_, epoch, round, rounds, epochs, elapsed_sec);
    SetLogRound(epoch + 1, round + 1);  // the job thread's next lines are about the next round
    if (listener_) listener_->OnRound(epoch, round, rounds, epochs, elapsed_sec);
  }
  void OnEpoch(const EpochReport& report) override {
    master_->RecordEpoch(job_, report);
    if (listener_) listener_->OnEpoch(report);
  }

 private:
  MasterService::Impl* const master_;
  const uint64_t job_;
  TrainingObserver* const listener_;
};

}  // namespace mrtrain::runtime
