#include "runtime/master/master_service.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/base/log.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/job/job_setup.h"
#include "runtime/job/shipped_job.h"
#include "runtime/master/job_journal.h"
#include "runtime/master/round_executor.h"
#include "runtime/master/task_scheduler.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::string WorkerKey(uint32_t id) { return std::to_string(id); }

constexpr int kTasksPerSlot = 2;

// Reports of a reducer shard host being unreachable, within one job, before it is declared lost.
constexpr int kUnreachableReports = 3;

// A worker listening on all interfaces says "0.0.0.0:port"; its peers reach it at the address
// the master sees it connect from.
std::string ReachableAddress(const std::string& data_address, const std::string& peer) {
  const size_t colon = data_address.rfind(':');
  const std::string host = data_address.substr(0, colon == std::string::npos ? 0 : colon);
  if (host != "0.0.0.0" && host != "[::]" && host != "::") return data_address;
  const size_t peer_colon = peer.rfind(':');
  if (peer_colon == std::string::npos) return data_address;
  return peer.substr(0, peer_colon) + data_address.substr(colon);
}

struct WorkerEntry {
  uint32_t id = 0;
  std::string name;
  int slots = 1;
  std::string data_address;
  std::shared_ptr<Connection> connection;
  int64_t last_heard = 0;  // the liveness tick of its latest message
};

// One step of a running job that waits for workers: a set of tasks over partitions (load, map,
// evaluate; planned by a TaskScheduler), or one request per worker (spec, start) or per reducer
// shard (reduce, save). Lives on the job thread's stack; the transport thread reaches it only
// through Impl::current_ under Impl::mu_.
struct Step {
  enum class Kind { kSpec, kLoad, kStart, kMap, kReduce, kEvaluate, kSave };
  Kind kind = Kind::kSpec;
  std::string what;  // "epoch 3 round 5: map tasks", for errors
  msg::DataSet set = msg::DataSet::kTrain;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t update = 0;  // reduce: the step (update count) the shards must commit

  // Task steps: the plan, and how to send task (partition, attempt) to a worker.
  TaskScheduler* scheduler = nullptr;
  std::function<Status(const WorkerEntry&, int64_t partition, int attempt)> launch_task;
  // Per-target steps: the workers (spec, start) or shards (reduce, save) still to answer, and
  // how to send the request to one.
  std::set<int64_t> waiting;
  std::function<Status(int64_t target)> launch_target;
  bool admitting = false;               // spec/start of late joiners: a failure leaves one out
  uint64_t placement = 0;               // start: the placement its StartTrainings carry
  std::map<int64_t, int> failures;      // save: failed writes by shard

  // Results, by partition or shard.
  std::vector<api::MapStats> stats;
  std::vector<PartitionSummary> summaries;
  std::vector<msg::ShardSaved> saved;
  std::vector<msg::JobReady> ready;

  bool finished = false;
  std::promise<Status> done;
};

// Where a recovery takes a job back to: the last committed checkpoint (or the job's start).
struct RestorePoint {
  int64_t epochs = 0;
  int64_t step = 0;
};

// "tensor 0 blocks 3..5, tensor 1 block 0": a reducer shard's keys, for logs.
std::string DescribeKeys(const std::vector<ParamKey>& keys) {
  std::string out;
  size_t i = 0;
  while (i < keys.size()) {
    size_t j = i;
    while (j + 1 < keys.size() && keys[j + 1].tensor() == keys[i].tensor() &&
           keys[j + 1].block() == keys[j].block() + 1) {
      ++j;
    }
    if (out.size() > 200) return out + ", ...";
    out += (out.empty() ? "" : ", ") + std::string("tensor ") + std::to_string(keys[i].tensor()) +
           (i == j ? " block " + std::to_string(keys[i].block())
                   : " blocks " + std::to_string(keys[i].block()) + ".." +
                         std::to_string(keys[j].block()));
    i = j + 1;
  }
  return out.empty() ? "no keys" : out;
}

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

// Streams a job's progress to a submit client over its connection.
class RemoteListener : public JobListener {
 public:
  RemoteListener(uint64_t job_id, std::shared_ptr<Connection> connection)
      : job_id_(job_id), connection_(std::move(connection)) {}

  void OnRound(int64_t epoch, int64_t round, int64_t rounds_per_epoch, int64_t total_epochs,
               double elapsed_sec) override {
    Send(msg::RoundProgress{job_id_, epoch, round, rounds_per_epoch, total_epochs, elapsed_sec});
  }
  void OnEpoch(const EpochReport& report) override {
    Send(msg::EpochReport{job_id_, report.epoch, report.ToJson()});
  }
  void OnFinished(const Status& status, const TrainingResult* result) override {
    nlohmann::json j;
    j["job_id"] = job_id_;
    if (status.ok()) {
      j["model"] = result->model_path;
      j["npz"] = result->npz_path;
      j["finished_before"] = !result->last.has_value();
    } else {
      j["error"] = status.ToString();
    }
    Send(msg::JobStatus{job_id_, status.ok() ? msg::JobState::kSucceeded : msg::JobState::kFailed,
                        j.dump()});
  }

 private:
  template <typename M>
  void Send(const M& m) {
    Status s = SendMessage(*connection_, m);  // a gone client is not the job's problem
    if (!s.ok()) Logger("master")->debug("cannot update the submitter: {}", s.ToString());
  }

  const uint64_t job_id_;
  const std::shared_ptr<Connection> connection_;
};

}  // namespace

class MasterService::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(Transport* transport, MasterOptions options)
      : transport_(transport), options_(std::move(options)) {}

  Result<std::string> Start();
  uint64_t Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener);
  void Cancel(uint64_t job_id);
  std::string StatusJson() const {
    std::lock_guard<std::mutex> lock(mu_);
    return StatusJsonLocked();
  }
  int64_t control_bytes() const { return control_bytes_.load(); }
  void Stop(bool shutdown_workers);

  // ---- Used by the job's RoundExecutor (on the job thread) ----
  Result<api::MapStats> MapRound(const RoundRequest& request);
  Status ReduceRound(const RoundRequest& request, int64_t examples);
  Result<api::MapStats> EvaluateSet(msg::DataSet set, int64_t step);
  Status SaveShards(CheckpointManifest manifest, CheckpointDir& dir);
  // After a failure of a step: puts the job back together if it can (see RoundExecutor) and
  // returns the epochs done at the restore point.
  Result<RestorePoint> Recover(const Status& failure);
  bool HasSet(msg::DataSet set) const { return partitions_[static_cast<int>(set)] > 0; }

 private:
  // ---- Transport thread ----
  ConnectionHandler Handler();
  void OnMessage(const std::shared_ptr<Connection>& c, MessageType type, std::string payload);
  void OnClosed(const std::shared_ptr<Connection>& c, const Status& status);
  void OnWorkerLostLocked(uint32_t id, const std::string& why);
  void ScheduleLivenessCheck();
  void CheckLiveness();
  void OnTaskDoneLocked(Step::Kind kind, uint64_t job, msg::DataSet set, int64_t epoch,
                        int64_t round, int64_t partition, int attempt, uint32_t worker,
                        const std::function<void(Step&)>& apply);
  // `worker` sent it: for reduce and save steps it must be the shard's host (a shard that
  // moved answers only from its new host).
  void OnTargetDoneLocked(Step::Kind kind, uint64_t job, int64_t target, uint32_t worker,
                          const std::function<void(Step&)>& apply);
  void OnTaskFailedLocked(const msg::TaskFailed& failed, uint32_t worker);
  void PumpLocked(Step& step);
  void CompleteLocked(Step& step, const Status& status);
  // The step ran past step_timeout: declares the workers it waits for lost (filling
  // `to_close`) and returns true to give it another step_timeout, or fails it.
  bool TimeOutLocked(Step& step, std::vector<std::shared_ptr<Connection>>* to_close);
  void ArmStepTimer(uint64_t token);
  // "task for data.train partition 3, rows [300, 400) (attempt 1)", for logs and errors.
  std::string DescribeTask(const Step& step, int64_t partition, int attempt) const;
  void ScheduleSpeculation();
  void Speculate();
  std::string StatusJsonLocked() const;
  template <typename M>
  Status SendCounted(Connection& c, const M& m) {
    MRTRAIN_ASSIGN_OR_RETURN(std::string payload, Encode(m));
    control_bytes_ += static_cast<int64_t>(payload.size());
    return c.Send(M::kType, std::move(payload));
  }
  template <typename M>
  Status SendToWorkerLocked(uint32_t id, const M& m) {
    auto it = workers_.find(id);
    if (it == workers_.end()) return UnavailableError("worker " + WorkerKey(id) + " is gone");
    return SendCounted(*it->second.connection, m);
  }

  // ---- Job thread ----
  void JobLoop();
  void RunJob(QueuedJob& job);
  Result<TrainingResult> Train(QueuedJob& job, jobs::JobSpec* spec_out);
  Status RunStep(Step& step);
  // Runs `step` as one round of tasks over the partitions of `set`, planned by its scheduler.
  Status RunTasks(msg::DataSet set, Step& step);
  Status AwaitWorkers();
  // Queues a job, recording it in the journal. REQUIRES: mu_.
  void EnqueueLocked(QueuedJob job);
  // Writes the journal's list of unfinished jobs (when there is a journal). REQUIRES: mu_.
  void PersistLocked();
  // Queues the unfinished jobs of the journal (--recover).
  Status RecoverJobs();
  // Sets the job up on registered workers that are not in it yet (they joined late or the
  // master waits for one because all were lost); those that fail it are left out. With
  // `start`, they also build the model (the shards stay where they are).
  Status AdmitJoiners(bool start);
  // Places the reducer shards round-robin over the job's workers and has every worker build
  // the model, the shard hosts restoring their shards from the checkpoint after `epochs`
  // epochs (`step` updates; 0 = the initial parameters).
  Status PlaceShards(int64_t epochs, int64_t step);
  // What `worker` is told to build: the data's shape, the shards it hosts (restored from the
  // checkpoint after `epochs` epochs, `step` updates) and where every shard lives.
  // REQUIRES: mu_.
  msg::StartTraining StartTrainingFor(uint32_t worker, int64_t epochs, int64_t step) const;
  // Marks the job's error recoverable or not, completing the current step with it.
  void FailJobLocked(const Status& error, bool recoverable);
  // Declares worker `id` lost: closes its connection and re-plans around it.
  void DropWorkerLocked(uint32_t id, const std::string& why,
                        std::vector<std::shared_ptr<Connection>>* to_close);
  Status LoadSet(msg::DataSet set, const jobs::JobSpec& spec,
                 std::vector<PartitionSummary>* summaries);

  Transport* const transport_;
  const MasterOptions options_;
  const std::shared_ptr<spdlog::logger> log_ = Logger("master");
  std::atomic<int64_t> control_bytes_{0};
  std::unique_ptr<JobJournal> journal_;  // set by Start when state_dir is

  mutable std::mutex mu_;
  std::condition_variable queue_cv_;
  bool stopping_ = false;
  std::thread job_thread_;
  std::deque<QueuedJob> queue_;
  uint64_t next_job_id_ = 1;
  std::map<uint64_t, JobRecord> records_;
  std::map<uint32_t, WorkerEntry> workers_;
  uint32_t next_worker_id_ = 1;
  std::map<const Connection*, uint32_t> worker_of_;
  std::map<const Connection*, uint64_t> submitter_of_;  // submit client -> its job
  int64_t dropped_results_ = 0;
  int64_t total_recoveries_ = 0;  // since the master started
  std::map<uint32_t, int> unreachable_reports_;  // shard host -> mappers' failures to reach it
  int64_t backup_tasks_ = 0;      // speculative attempts started, since the master started

  // The running job; written by the job thread under mu_.
  uint64_t active_job_ = 0;
  bool cancelled_ = false;
  Status job_error_;                      // set when the job cannot go on as it is
  bool recoverable_ = false;              // job_error_ is a lost shard host: Recover() can mend it
  int recoveries_ = 0;                    // since the last committed checkpoint
  int max_recoveries_ = 4;                // the spec's max_attempts
  std::set<uint32_t> refused_;            // workers that could not set the job up
  std::vector<std::string> shard_addresses_;  // [shard] -> its host's data address
  uint64_t placement_ = 0;                    // placements of the shards so far (all jobs)
  // The restore point of a recovery: the last committed checkpoint, or where the job started.
  int64_t committed_epochs_ = 0;
  int64_t committed_step_ = 0;
  // What a worker needs to join the job: its spec, and the data's shape.
  msg::JobSpecText job_text_;
  api::DataShape shape_;
  int num_reducers_ = 0;
  std::vector<uint32_t> job_workers_;     // ascending
  std::vector<uint32_t> shard_hosts_;     // [shard] -> worker
  std::unique_ptr<TaskScheduler> schedulers_[3];  // by DataSet; sticky across steps
  int64_t partitions_[3] = {0, 0, 0};
  std::vector<int64_t> first_rows_[3];      // by DataSet: [p] = rows before partition p, then all
  std::vector<std::string> shard_ranges_;   // [shard]: its keys, for logs
  int64_t clock_ms_ = 0;  // advanced by the speculation ticker: task durations on the transport's clock
  int64_t step_count_ = 0;  // updates applied
  Step* current_ = nullptr;
  uint64_t step_token_ = 0;  // counts steps, so a step's timer knows whether it still runs
  int64_t tick_ = 0;         // liveness checks so far (heartbeat_interval apart)
};

// Statistics of tasks, added in partition order so the float sums do not depend on who ran what.
static api::MapStats SumInPartitionOrder(const std::vector<api::MapStats>& by_partition) {
  api::MapStats total;
  for (const api::MapStats& s : by_partition) AddStats(s, &total);
  return total;
}

// A RoundExecutor over the cluster, for the training loop.
class ClusterExecutor : public RoundExecutor {
 public:
  ClusterExecutor(MasterService::Impl* master, const ModelLayout& layout, int num_slots,
                  int64_t step)
      : master_(master), layout_(layout), num_slots_(num_slots), step_(step) {}

  Result<api::MapStats> RunRound(const RoundRequest& request) override {
    MRTRAIN_ASSIGN_OR_RETURN(api::MapStats stats, master_->MapRound(request));
    MRTRAIN_RETURN_IF_ERROR(master_->ReduceRound(request, stats.examples));
    step_ = request.step;
    return stats;
  }
  bool HasEvalSet(EvalSet set) const override { return master_->HasSet(ToDataSet(set)); }
  Result<api::MapStats> Evaluate(EvalSet set) override {
    return master_->EvaluateSet(ToDataSet(set), step_);
  }
  Result<int64_t> Recover(const Status& failure) override {
    MRTRAIN_ASSIGN_OR_RETURN(RestorePoint restored, master_->Recover(failure));
    step_ = restored.step;
    return restored.epochs;
  }
  Status SaveCheckpoint(CheckpointManifest manifest, CheckpointDir& dir) override {
    manifest.step = step_;
    manifest.tensors = layout_.specs();
    manifest.block_size = layout_.block_size();
    manifest.num_slots = num_slots_;
    return master_->SaveShards(std::move(manifest), dir);
  }

 private:
  static msg::DataSet ToDataSet(EvalSet set) {
    return set == EvalSet::kTest ? msg::DataSet::kTest : msg::DataSet::kValidation;
  }
  MasterService::Impl* const master_;
  const ModelLayout& layout_;
  const int num_slots_;
  int64_t step_;
};

// ---------------------------------------------------------------------------------------------
// Lifecycle

void MasterService::Impl::EnqueueLocked(QueuedJob job) {
  job.text.job_id = job.id;
  records_[job.id].name = job.text.source;
  if (journal_) {
    Status kept = journal_->AddJob(job.id, job.text);
    if (!kept.ok()) log_->error("job {} will not survive a restart: {}", job.id, kept.ToString());
  }
  queue_.push_back(std::move(job));
  PersistLocked();
  queue_cv_.notify_all();
}

void MasterService::Impl::PersistLocked() {
  if (!journal_) return;
  std::vector<JournalEntry> unfinished;
  for (const auto& [id, r] : records_) {
    if (r.state == "queued" || r.state == "running") {
      unfinished.push_back(JournalEntry{id, r.state, r.epochs_done});
    }
  }
  Status written = journal_->WriteState(next_job_id_, unfinished);
  if (!written.ok()) log_->error("cannot record the jobs' state: {}", written.ToString());
}

Status MasterService::Impl::RecoverJobs() {
  MRTRAIN_ASSIGN_OR_RETURN(JobJournal::Recovered recovered, journal_->Load());
  std::lock_guard<std::mutex> lock(mu_);
  next_job_id_ = std::max(next_job_id_, recovered.next_job_id);
  for (size_t i = 0; i < recovered.jobs.size(); ++i) {
    const JournalEntry& e = recovered.jobs[i];
    msg::JobSpecText text = std::move(recovered.texts[i]);
    // A job that was running carries on from its newest checkpoint; a queued one starts as
    // it was submitted.
    if (e.state == "running") text.resume = true;
    log_->info("recovering job {} ({}, {} epochs done) from {}", e.id, e.state, e.epochs_done,
               journal_->dir());
    records_[e.id].epochs_done = e.epochs_done;
    EnqueueLocked(QueuedJob{e.id, std::move(text), nullptr});
  }
  return Status::Ok();
}

Result<std::string> MasterService::Impl::Start() {
  if (!options_.state_dir.empty()) {
    journal_ = std::make_unique<JobJournal>(options_.state_dir);
    if (options_.recover) MRTRAIN_RETURN_IF_ERROR(RecoverJobs());
  }
  MRTRAIN_ASSIGN_OR_RETURN(std::string address,
                           transport_->Listen(options_.listen_address, Handler()));
  job_thread_ = std::thread([this] { JobLoop(); });
  if (options_.heartbeat_timeout.count() > 0) ScheduleLivenessCheck();
  if (options_.speculation_multiple > 0) ScheduleSpeculation();
  log_->info("master listening on {}", address);
  return address;
}

void MasterService::Impl::ScheduleLivenessCheck() {
  std::weak_ptr<Impl> weak = shared_from_this();
  transport_->RunAfter(options_.heartbeat_interval, [weak] {
    if (auto self = weak.lock()) self->CheckLiveness();
  });
}

// Runs every heartbeat_interval on the transport's clock: a worker silent for longer than the
// timeout (a crashed host, a cut link, a paused process) is lost, whatever its socket says.
void MasterService::Impl::CheckLiveness() {
  std::vector<std::shared_ptr<Connection>> silent;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    ++tick_;
    const int64_t limit = std::max<int64_t>(
        1, options_.heartbeat_timeout.count() / std::max<int64_t>(1, options_.heartbeat_interval.count()));
    std::vector<uint32_t> lost;
    for (const auto& [id, w] : workers_) {
      if (tick_ - w.last_heard > limit) lost.push_back(id);
    }
    for (uint32_t id : lost) {
      DropWorkerLocked(id,
                       "nothing heard for " + std::to_string(options_.heartbeat_timeout.count()) +
                           " ms (heartbeat timeout)",
                       &silent);
    }
  }
  for (const auto& c : silent) c->Close();
  ScheduleLivenessCheck();
}

void MasterService::Impl::ScheduleSpeculation() {
  std::weak_ptr<Impl> weak = shared_from_this();
  transport_->RunAfter(options_.speculation_interval, [weak] {
    if (auto self = weak.lock()) self->Speculate();
  });
}

// Runs every speculation_interval on the transport's clock: it is the clock task durations are
// measured on, and it starts backup attempts of tasks that run far longer than their round's
// median (a slow disk, a busy host, a hung thread) on other workers; the first to finish wins.
void MasterService::Impl::Speculate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    clock_ms_ += options_.speculation_interval.count();
    Step* step = current_;
    if (step && step->scheduler && !step->finished) {
      for (const BackupTask& b : step->scheduler->Speculate(
               clock_ms_, options_.speculation_multiple, options_.speculation_min.count())) {
        auto it = workers_.find(static_cast<uint32_t>(std::stoul(b.backup.worker)));
        if (it == workers_.end()) continue;
        ++backup_tasks_;
        log_->warn("{}: {} on worker {} has run {} ms (median {} ms); backup attempt {} on "
                   "worker {} ({})",
                   step->what, DescribeTask(*step, b.slow.partition, b.slow.attempt),
                   b.slow.worker, clock_ms_ - b.slow.started_ms, b.median_ms, b.backup.attempt,
                   b.backup.worker, it->second.name);
        Status sent = step->launch_task(it->second, b.backup.partition, b.backup.attempt);
        if (!sent.ok()) log_->warn("cannot send a backup task: {}", sent.ToString());
      }
    }
  }
  ScheduleSpeculation();
}

void MasterService::Impl::Stop(bool shutdown_workers) {
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !job_thread_.joinable()) return;
    stopping_ = true;
    cancelled_ = true;
    if (current_) CompleteLocked(*current_, AbortedError("the master is stopping"));
    for (auto& [id, w] : workers_) {
      if (shutdown_workers) (void)SendCounted(*w.connection, msg::Shutdown{"the master is stopping"});
      connections.push_back(w.connection);
    }
  }
  queue_cv_.notify_all();
  if (job_thread_.joinable()) job_thread_.join();
  for (auto& c : connections) c->Close();
  // Jobs that never ran are failed, so no submitter waits for ever.
  std::deque<QueuedJob> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (QueuedJob& job : left) {
    if (job.listener) job.listener->OnFinished(AbortedError("the master stopped"), nullptr);
  }
}

uint64_t MasterService::Impl::Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_job_id_++;
    EnqueueLocked(QueuedJob{id, std::move(job), std::move(listener)});
  }
  return id;
}

void MasterService::Impl::Cancel(uint64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (job_id == active_job_) {
    cancelled_ = true;
    if (current_) CompleteLocked(*current_, AbortedError("job cancelled"));
    queue_cv_.notify_all();  // it may be waiting for workers
    return;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->id != job_id) continue;
    records_[job_id].state = "cancelled";
    if (journal_) {
      journal_->RemoveJob(job_id);
      PersistLocked();
    }
    // Told outside the queue: the listener may send on a connection.
    auto listener = it->listener;
    queue_.erase(it);
    if (listener) {
      std::thread([listener] { listener->OnFinished(AbortedError("job cancelled"), nullptr); })
          .detach();
    }
    return;
  }
}

std::string MasterService::Impl::StatusJsonLocked() const {
  nlohmann::json j;
  j["workers"] = nlohmann::json::array();
  for (const auto& [id, w] : workers_) {
    j["workers"].push_back(
        {{"id", id}, {"name", w.name}, {"slots", w.slots}, {"data_address", w.data_address}});
  }
  j["jobs"] = nlohmann::json::array();
  for (const auto& [id, r] : records_) {
    nlohmann::json job = {{"id", id},
                          {"name", r.name},
                          {"state", r.state},
                          {"epochs_done", r.epochs_done},
                          {"epochs", r.epochs}};
    if (!r.error.empty()) job["error"] = r.error;
    j["jobs"].push_back(job);
  }
  j["control_bytes"] = control_bytes_.load();
  j["dropped_results"] = dropped_results_;
  j["recoveries"] = total_recoveries_;
  j["backup_tasks"] = backup_tasks_;
  return j.dump();
}

// ---------------------------------------------------------------------------------------------
// Transport thread

ConnectionHandler MasterService::Impl::Handler() {
  std::weak_ptr<Impl> weak = shared_from_this();
  ConnectionHandler h;
  h.on_message = [weak](const std::shared_ptr<Connection>& c, MessageType type,
                        std::string payload) {
    if (auto self = weak.lock()) {
      self->OnMessage(c, type, std::move(payload));
    } else {
      c->Close();
    }
  };
  h.on_closed = [weak](const std::shared_ptr<Connection>& c, const Status& status) {
    if (auto self = weak.lock()) self->OnClosed(c, status);
  };
  return h;
}

void MasterService::Impl::OnClosed(const std::shared_ptr<Connection>& c, const Status& status) {
  uint64_t cancel = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = worker_of_.find(c.get()); it != worker_of_.end()) {
      const uint32_t id = it->second;
      worker_of_.erase(it);
      OnWorkerLostLocked(id, status.ok() ? "disconnected" : status.ToString());
    }
    if (auto it = submitter_of_.find(c.get()); it != submitter_of_.end()) {
      cancel = it->second;
      submitter_of_.erase(it);
    }
  }
  // Nobody is left to tell the outcome to (the submitter's Ctrl-C closes the connection too).
  if (cancel != 0) {
    log_->info("the submitter of job {} went away; cancelling it", cancel);
    Cancel(cancel);
  }
}

void MasterService::Impl::OnWorkerLostLocked(uint32_t id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const std::string name = it->second.name;
  workers_.erase(it);
  auto in_job = std::find(job_workers_.begin(), job_workers_.end(), id);
  if (in_job == job_workers_.end() || stopping_) {
    log_->info("worker {} ({}) left: {}", id, name, why);
    return;
  }
  log_->warn("worker {} ({}) lost during job {}: {}", id, name, active_job_, why);
  job_workers_.erase(in_job);
  for (auto& s : schedulers_) {
    if (s) s->RemoveWorker(WorkerKey(id));
  }
  // Its reducer shards are gone with it: the job goes on once they are placed again and
  // restored (Recover), which the step now running hands over to by failing.
  for (size_t s = 0; s < shard_hosts_.size(); ++s) {
    if (shard_hosts_[s] == id) {
      return FailJobLocked(UnavailableError("worker " + WorkerKey(id) + " (" + name +
                                            ") hosting reducer shard " + std::to_string(s) +
                                            " was lost: " + why),
                           /*recoverable=*/true);
    }
  }
  if (job_workers_.empty()) {
    return FailJobLocked(UnavailableError("every worker of the job was lost"),
                         /*recoverable=*/true);
  }
  if (!current_) return;
  if (current_->scheduler) {
    PumpLocked(*current_);  // its tasks go elsewhere
  } else if ((current_->kind == Step::Kind::kSpec || current_->kind == Step::Kind::kStart) &&
             current_->waiting.erase(id) && current_->waiting.empty()) {
    CompleteLocked(*current_, Status::Ok());  // the job goes on without it
  }
}

void MasterService::Impl::FailJobLocked(const Status& error, bool recoverable) {
  if (job_error_.ok()) {
    job_error_ = error;
    recoverable_ = recoverable;
  } else {
    recoverable_ = recoverable_ && recoverable;
  }
  if (current_) CompleteLocked(*current_, job_error_);
}

void MasterService::Impl::DropWorkerLocked(uint32_t id, const std::string& why,
                                           std::vector<std::shared_ptr<Connection>>* to_close) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  to_close->push_back(it->second.connection);
  worker_of_.erase(it->second.connection.get());
  OnWorkerLostLocked(id, why);
}

void MasterService::Impl::CompleteLocked(Step& step, const Status& status) {
  if (step.finished) return;
  step.finished = true;
  step.done.set_value(status);
}

void MasterService::Impl::PumpLocked(Step& step) {
  for (const TaskAssignment& a : step.scheduler->Assign(clock_ms_)) {
    auto it = workers_.find(static_cast<uint32_t>(std::stoul(a.worker)));
    if (it == workers_.end()) continue;  // its loss is being handled
    Status sent = step.launch_task(it->second, a.partition, a.attempt);
    if (!sent.ok()) log_->warn("cannot send a task to worker {}: {}", a.worker, sent.ToString());
  }
}

void MasterService::Impl::OnTaskDoneLocked(Step::Kind kind, uint64_t job, msg::DataSet set,
                                           int64_t epoch, int64_t round, int64_t partition,
                                           int attempt, uint32_t worker,
                                           const std::function<void(Step&)>& apply) {
  Step* step = current_;
  if (!step || step->kind != kind || job != active_job_ || step->set != set ||
      step->epoch != epoch || step->round != round) {
    ++dropped_results_;  // a late or duplicate result of a finished step
    return;
  }
  if (step->scheduler->OnDone(partition, attempt, WorkerKey(worker), clock_ms_) !=
      TaskScheduler::Outcome::kAccepted) {
    ++dropped_results_;
    return;
  }
  apply(*step);
  if (step->scheduler->RoundDone()) {
    CompleteLocked(*step, Status::Ok());
  } else {
    PumpLocked(*step);
  }
}

void MasterService::Impl::OnTargetDoneLocked(Step::Kind kind, uint64_t job, int64_t target,
                                             uint32_t worker,
                                             const std::function<void(Step&)>& apply) {
  Step* step = current_;
  const bool per_shard = kind == Step::Kind::kReduce || kind == Step::Kind::kSave;
  if (!step || step->kind != kind || job != active_job_ || !step->waiting.count(target) ||
      (per_shard && (target < 0 || static_cast<size_t>(target) >= shard_hosts_.size() ||
                     shard_hosts_[target] != worker))) {
    ++dropped_results_;
    return;
  }
  step->waiting.erase(target);
  apply(*step);
  if (step->waiting.empty()) CompleteLocked(*step, Status::Ok());
}

void MasterService::Impl::OnTaskFailedLocked(const msg::TaskFailed& f, uint32_t worker) {
  Step* step = current_;
  if (!step || f.job_id != active_job_) {
    ++dropped_results_;
    return;
  }
  auto it = workers_.find(worker);
  const std::string name = it != workers_.end() ? it->second.name : "?";
  const Status cause(f.code, f.message);
  switch (f.kind) {
    case msg::TaskKind::kMap:
    case msg::TaskKind::kLoad:
    case msg::TaskKind::kEvaluate: {
      const Step::Kind kind = f.kind == msg::TaskKind::kMap    ? Step::Kind::kMap
                              : f.kind == msg::TaskKind::kLoad ? Step::Kind::kLoad
                                                               : Step::Kind::kEvaluate;
      // Map failures carry their epoch and round, evaluation failures their step (in round).
      if (step->kind != kind || step->set != f.set ||
          (kind == Step::Kind::kMap && step->epoch != f.epoch) ||
          (kind != Step::Kind::kLoad && step->round != f.round)) {
        ++dropped_results_;
        return;
      }
      log_->warn("{}: partition {} attempt {} failed on worker {} ({}): {}", step->what,
                 f.partition, f.attempt, worker, name, cause.ToString());
      // A reducer shard's host that mappers cannot reach is blamed instead of the task (a
      // task is not the worse for it), and declared lost once it has been reported often
      // enough, so a host cut off from its peers but not from the master is recovered from.
      const bool host_unreachable = kind == Step::Kind::kMap && f.shard >= 0 &&
                                    static_cast<size_t>(f.shard) < shard_hosts_.size() &&
                                    f.code == StatusCode::kUnavailable;
      if (host_unreachable) {
        const uint32_t host = shard_hosts_[f.shard];
        if (++unreachable_reports_[host] >= kUnreachableReports && workers_.count(host)) {
          std::vector<std::shared_ptr<Connection>> to_close;
          DropWorkerLocked(host,
                           "its reducer shard " + std::to_string(f.shard) +
                               " could not be reached by mappers " +
                               std::to_string(kUnreachableReports) + " times; last: " +
                               f.message,
                           &to_close);
          for (auto& c : to_close) transport_->Post([c] { c->Close(); });
          if (step->finished) return;
        }
      }
      Status failed = step->scheduler->OnFailed(f.partition, f.attempt, WorkerKey(worker), cause,
                                                /*counts=*/!host_unreachable);
      if (!failed.ok()) {
        CompleteLocked(*step, failed.WithContext(std::string("data.") + msg::DataSetName(f.set) + ", " +
                                                 step->what + " (worker " + WorkerKey(worker) +
                                                 " is " + name + ")"));
      } else {
        PumpLocked(*step);
      }
      return;
    }
    case msg::TaskKind::kReduce:
    case msg::TaskKind::kSave:
    case msg::TaskKind::kSetup: {
      // Only a failure of what runs now fails it: a stale report is dropped.
      const bool from_host = f.shard >= 0 && static_cast<size_t>(f.shard) < shard_hosts_.size() &&
                             shard_hosts_[f.shard] == worker;
      const bool current =
          f.kind == msg::TaskKind::kReduce
              ? step->kind == Step::Kind::kReduce && step->epoch == f.epoch &&
                    step->round == f.round && step->waiting.count(f.shard) && from_host
          : f.kind == msg::TaskKind::kSave
              ? step->kind == Step::Kind::kSave && step->epoch == f.epoch &&
                    step->waiting.count(f.shard) && from_host
              : (step->kind == Step::Kind::kSpec ||
                 (step->kind == Step::Kind::kStart &&
                  step->placement == static_cast<uint64_t>(f.round))) &&
                    step->waiting.count(worker);
      if (!current) {
        ++dropped_results_;
        return;
      }
      const std::string where =
          f.kind == msg::TaskKind::kSetup
              ? "worker " + WorkerKey(worker) + " (" + name + ")"
              : "reducer shard " + std::to_string(f.shard) + " on worker " + WorkerKey(worker) +
                    " (" + name + ")";
      if (f.kind == msg::TaskKind::kSetup && step->admitting) {
        // A late joiner that cannot set the job up is left out; the job goes on.
        log_->warn("{}: {} is left out of job {}: {}", step->what, where, active_job_, f.message);
        refused_.insert(worker);
        step->waiting.erase(worker);
        if (step->waiting.empty()) CompleteLocked(*step, Status::Ok());
        return;
      }
      if (f.kind == msg::TaskKind::kSave && ++step->failures[f.shard] < max_recoveries_) {
        // A shard file that failed to write (or to read back the same) is written again.
        log_->warn("{}: {}: {}; writing it again", step->what, where, f.message);
        Status sent = step->launch_target(f.shard);
        if (!sent.ok()) CompleteLocked(*step, sent.WithContext(step->what));
        return;
      }
      CompleteLocked(*step, Status(f.code, step->what + ": " + where + ": " + f.message));
      return;
    }
  }
}

void MasterService::Impl::OnMessage(const std::shared_ptr<Connection>& c, MessageType type,
                                    std::string payload) {
  std::lock_guard<std::mutex> lock(mu_);
  auto worker_it = worker_of_.find(c.get());
  const bool is_worker = worker_it != worker_of_.end();
  if (is_worker) control_bytes_ += static_cast<int64_t>(payload.size());
  const uint32_t worker = is_worker ? worker_it->second : 0;
  if (is_worker) workers_[worker].last_heard = tick_;
  auto bad = [&](const Status& s) {
    log_->error("bad {} from {}: {}; closing", MessageTypeName(static_cast<uint16_t>(type)),
                c->peer(), s.ToString());
    c->Close();
  };
  if (!is_worker) {
    switch (type) {
      case MessageType::kHello: {
        auto m = msg::DecodeAs<msg::Hello>(payload);
        if (!m.ok()) return bad(m.status());
        control_bytes_ += static_cast<int64_t>(payload.size());
        WorkerEntry w;
        w.id = next_worker_id_++;
        w.name = m->worker_name;
        w.slots = std::max<int>(1, static_cast<int>(m->slots));
        w.data_address = ReachableAddress(m->data_address, c->peer());
        w.connection = c;
        worker_of_[c.get()] = w.id;
        log_->info("worker {} ({}) joined: {} slots, data plane at {}", w.id, w.name, w.slots,
                   w.data_address);
        w.last_heard = tick_;
        (void)SendCounted(*c, msg::Welcome{w.id, options_.heartbeat_interval.count()});
        workers_[w.id] = std::move(w);
        queue_cv_.notify_all();  // a job may be waiting for workers
        return;
      }
      case MessageType::kJobSpecText: {
        auto m = msg::DecodeAs<msg::JobSpecText>(payload);
        if (!m.ok()) return bad(m.status());
        const uint64_t id = next_job_id_++;
        submitter_of_[c.get()] = id;
        log_->info("job {} submitted from {} ({})", id, c->peer(), m->source);
        (void)SendMessage(*c, msg::JobStatus{id, msg::JobState::kQueued,
                                             nlohmann::json{{"job_id", id}}.dump()});
        EnqueueLocked(QueuedJob{id, std::move(*m), std::make_shared<RemoteListener>(id, c)});
        return;
      }
      case MessageType::kStatusRequest:
        (void)SendMessage(*c, msg::JobStatus{0, msg::JobState::kRunning, StatusJsonLocked()});
        return;
      case MessageType::kCancelJob: {
        auto m = msg::DecodeAs<msg::CancelJob>(payload);
        if (!m.ok()) return bad(m.status());
        // Cancel takes the lock itself: run it after this callback.
        transport_->Post([self = shared_from_this(), id = m->job_id] { self->Cancel(id); });
        return;
      }
      default:
        log_->warn("{} sent {} before saying who it is; closing", c->peer(),
                   MessageTypeName(static_cast<uint16_t>(type)));
        c->Close();
        return;
    }
  }

  switch (type) {
    case MessageType::kHeartbeat:
      return;
    case MessageType::kJobReady: {
      auto m = msg::DecodeAs<msg::JobReady>(payload);
      if (!m.ok()) return bad(m.status());
      const Step::Kind kind = m->phase == msg::JobReady::kSpec ? Step::Kind::kSpec
                                                              : Step::Kind::kStart;
      if (kind == Step::Kind::kStart && current_ && current_->placement != m->placement) {
        ++dropped_results_;  // it answers an earlier placement
        return;
      }
      OnTargetDoneLocked(kind, m->job_id, worker, worker,
                         [&](Step& s) { s.ready.push_back(*m); });
      return;
    }
    case MessageType::kPartitionLoaded: {
      auto m = msg::DecodeAs<msg::PartitionLoaded>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskDoneLocked(Step::Kind::kLoad, m->job_id, m->set, 0, 0, m->partition, m->attempt,
                       worker, [&](Step& s) {
                         PartitionSummary& p = s.summaries[m->partition];
                         p.rows = m->rows;
                         p.num_cols = m->num_cols;
                         p.is_sparse = m->is_sparse != 0;
                         p.labels_integral = m->labels_integral != 0;
                         p.max_label = m->max_label;
                         p.skipped_records = m->skipped_records;
                         p.skipped_samples = std::move(m->skipped_samples);
                       });
      return;
    }
    case MessageType::kMapTaskDone: {
      auto m = msg::DecodeAs<msg::MapTaskDone>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskDoneLocked(Step::Kind::kMap, m->job_id, msg::DataSet::kTrain, m->epoch, m->round,
                       m->partition, m->attempt, worker, [&](Step& s) {
                         s.stats[m->partition] = api::MapStats{m->loss_sum, m->examples,
                                                               m->correct};
                       });
      return;
    }
    case MessageType::kEvalDone: {
      auto m = msg::DecodeAs<msg::EvalDone>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskDoneLocked(Step::Kind::kEvaluate, m->job_id, m->set, 0, m->step, m->partition,
                       m->attempt, worker, [&](Step& s) {
                         s.stats[m->partition] = api::MapStats{m->loss_sum, m->examples,
                                                               m->correct};
                       });
      return;
    }
    case MessageType::kShardCommitted: {
      auto m = msg::DecodeAs<msg::ShardCommitted>(payload);
      if (!m.ok()) return bad(m.status());
      // A repeated or late commit of another step must not complete this reduce.
      if (current_ && current_->kind == Step::Kind::kReduce &&
          (current_->epoch != m->epoch || current_->round != m->round ||
           current_->update != m->step)) {
        ++dropped_results_;
        return;
      }
      OnTargetDoneLocked(Step::Kind::kReduce, m->job_id, m->shard, worker, [](Step&) {});
      return;
    }
    case MessageType::kShardSaved: {
      auto m = msg::DecodeAs<msg::ShardSaved>(payload);
      if (!m.ok()) return bad(m.status());
      if (current_ && current_->kind == Step::Kind::kSave && current_->epoch != m->epochs_done) {
        ++dropped_results_;
        return;
      }
      OnTargetDoneLocked(Step::Kind::kSave, m->job_id, m->shard, worker,
                         [&](Step& s) { s.saved[m->shard] = *m; });
      return;
    }
    case MessageType::kTaskFailed: {
      auto m = msg::DecodeAs<msg::TaskFailed>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskFailedLocked(*m, worker);
      return;
    }
    default:
      log_->warn("ignoring {} from worker {}", MessageTypeName(static_cast<uint16_t>(type)),
                 worker);
  }
}

// ---------------------------------------------------------------------------------------------
// Job thread

void MasterService::Impl::JobLoop() {
  while (true) {
    QueuedJob job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      // Active from the moment it leaves the queue, so a Cancel never falls between the two.
      active_job_ = job.id;
      cancelled_ = false;
      job_error_ = Status::Ok();
      records_[job.id].state = "running";
      PersistLocked();
    }
    RunJob(job);
  }
}

Status MasterService::Impl::RunStep(Step& step) {
  std::future<Status> done = step.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) return AbortedError(stopping_ ? "the master is stopping" : "job cancelled");
    if (!job_error_.ok()) return job_error_;
    current_ = &step;
    if (step.scheduler) {
      PumpLocked(step);
    } else {
      for (int64_t target : std::set<int64_t>(step.waiting)) {
        Status sent = step.launch_target(target);
        if (!sent.ok()) CompleteLocked(step, sent.WithContext(step.what));
      }
      if (step.waiting.empty()) CompleteLocked(step, Status::Ok());
    }
  }
  // The step's bound is a transport timer, so it runs on the transport's clock (a test's fake
  // one too); the token keeps a late timer from touching a later step.
  uint64_t token;
  {
    std::lock_guard<std::mutex> lock(mu_);
    token = ++step_token_;
  }
  ArmStepTimer(token);
  Status status = done.get();  // the timer, Cancel and Stop all complete the step
  std::lock_guard<std::mutex> lock(mu_);
  ++step_token_;  // its timer, if still armed, now finds nothing to do
  current_ = nullptr;
  return status;
}

void MasterService::Impl::ArmStepTimer(uint64_t token) {
  std::weak_ptr<Impl> weak = shared_from_this();
  transport_->RunAfter(options_.step_timeout, [weak, token] {
    auto self = weak.lock();
    if (!self) return;
    std::vector<std::shared_ptr<Connection>> to_close;
    bool rearm = false;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (!self->current_ || self->step_token_ != token) return;
      rearm = self->TimeOutLocked(*self->current_, &to_close);
    }
    for (const auto& c : to_close) c->Close();
    if (rearm) self->ArmStepTimer(token);
  });
}

bool MasterService::Impl::TimeOutLocked(Step& step,
                                        std::vector<std::shared_ptr<Connection>>* to_close) {
  // The workers the step still waits for are stuck (a hung thread keeps heartbeats going):
  // each is named and declared lost, so its tasks run elsewhere or its shards are restored
  // elsewhere, instead of the whole job hanging or failing.
  std::map<uint32_t, std::string> culprits;
  const std::string limit = std::to_string(options_.step_timeout.count()) + " ms";
  if (step.scheduler) {
    for (const RunningTask& t : step.scheduler->Running()) {
      culprits[static_cast<uint32_t>(std::stoul(t.worker))] +=
          (culprits.count(static_cast<uint32_t>(std::stoul(t.worker))) ? "; " : "") +
          DescribeTask(step, t.partition, t.attempt);
    }
  } else if (step.kind == Step::Kind::kReduce || step.kind == Step::Kind::kSave) {
    for (int64_t shard : step.waiting) {
      culprits[shard_hosts_[shard]] += "reducer shard " + std::to_string(shard) + " (" +
                                       shard_ranges_[shard] + ")";
    }
  } else {
    for (int64_t w : step.waiting) culprits[static_cast<uint32_t>(w)] += "its setup";
  }
  if (culprits.empty() || !job_error_.ok()) {
    CompleteLocked(step, DeadlineExceededError(step.what + " did not finish within " + limit));
    return false;
  }
  for (const auto& [id, what] : culprits) {
    log_->error("{}: worker {} is stuck on {} for over {}; declaring it lost", step.what, id,
                what, limit);
    DropWorkerLocked(id, "stuck on " + what + " in " + step.what + " for over " + limit,
                     to_close);
  }
  return !step.finished;
}

std::string MasterService::Impl::DescribeTask(const Step& step, int64_t partition,
                                              int attempt) const {
  const int set = static_cast<int>(step.set);
  std::string rows;
  if (static_cast<size_t>(partition) + 1 < first_rows_[set].size()) {
    rows = ", rows [" + std::to_string(first_rows_[set][partition]) + ", " +
           std::to_string(first_rows_[set][partition + 1]) + ")";
  }
  return "task for data." + std::string(msg::DataSetName(step.set)) + " partition " +
         std::to_string(partition) + rows + " (attempt " + std::to_string(attempt) + ")";
}

Status MasterService::Impl::RunTasks(msg::DataSet set, Step& step) {
  const int index = static_cast<int>(set);
  {
    std::lock_guard<std::mutex> lock(mu_);
    schedulers_[index]->StartRound();
    step.scheduler = schedulers_[index].get();
  }
  step.set = set;
  step.stats.resize(partitions_[index]);
  step.summaries.resize(partitions_[index]);
  return RunStep(step);
}

Status MasterService::Impl::AwaitWorkers() {
  const size_t wanted = static_cast<size_t>(std::max(1, options_.min_workers));
  std::unique_lock<std::mutex> lock(mu_);
  const bool enough = queue_cv_.wait_for(lock, options_.worker_wait, [&] {
    return stopping_ || cancelled_ || workers_.size() >= wanted;
  });
  if (stopping_ || cancelled_) return AbortedError("job cancelled");
  if (!enough) {
    return UnavailableError(std::to_string(workers_.size()) + " of " + std::to_string(wanted) +
                            " workers registered within " +
                            std::to_string(options_.worker_wait.count()) +
                            " ms; start them with `mrtrain worker --master ADDRESS`");
  }
  job_workers_.clear();
  for (const auto& [id, w] : workers_) job_workers_.push_back(id);
  return Status::Ok();
}

Status MasterService::Impl::LoadSet(msg::DataSet set, const jobs::JobSpec& spec,
                                    std::vector<PartitionSummary>* summaries) {
  const int index = static_cast<int>(set);
  {
    // The set's scheduler lives for the job: it remembers where each partition was loaded.
    std::lock_guard<std::mutex> lock(mu_);
    schedulers_[index] = std::make_unique<TaskScheduler>(partitions_[index], spec.max_attempts);
    // Each worker gets two tasks per slot: the second waits in its queue, so a slot never idles
    // for the round trip of a MapTaskDone and the next RunMapTask.
    for (uint32_t id : job_workers_) {
      schedulers_[index]->AddWorker(WorkerKey(id), kTasksPerSlot * workers_.at(id).slots);
    }
  }
  Step step;
  step.kind = Step::Kind::kLoad;
  step.what = std::string("loading data.") + msg::DataSetName(set);
  const uint64_t job = active_job_;
  step.launch_task = [this, job, set](const WorkerEntry& w, int64_t p, int attempt) {
    return SendCounted(*w.connection, msg::LoadPartition{job, set, p, attempt});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(set, step));
  *summaries = std::move(step.summaries);
  std::lock_guard<std::mutex> lock(mu_);
  first_rows_[index].assign(1, 0);
  for (const PartitionSummary& p : *summaries) first_rows_[index].push_back(first_rows_[index].back() + p.rows);
  return Status::Ok();
}

Result<TrainingResult> MasterService::Impl::Train(QueuedJob& queued, jobs::JobSpec* spec_out) {
  const msg::JobSpecText& text = queued.text;
  MRTRAIN_ASSIGN_OR_RETURN(
      jobs::JobSpec spec,
      UnpackJob(text, options_.plugin_cache_dir.empty() ? DefaultPluginCacheDir()
                                                        : options_.plugin_cache_dir));
  *spec_out = spec;
  {
    std::lock_guard<std::mutex> lock(mu_);
    records_[queued.id].name = spec.name;
    records_[queued.id].epochs = spec.epochs;
  }
  // Everything the master can check alone fails the job before any worker is involved.
  MRTRAIN_ASSIGN_OR_RETURN(plugin::PluginSet plugins, LoadPlugins(spec));
  MRTRAIN_ASSIGN_OR_RETURN(auto mapper, MakeMapper(spec, plugins));
  MRTRAIN_ASSIGN_OR_RETURN(auto rule, MakeRule(spec, plugins));
  MRTRAIN_RETURN_IF_ERROR(MakeCombiner(spec, plugins).status());

  CheckpointDir checkpoints(spec.output_dir + "/checkpoints", spec.checkpoint_keep);
  int64_t start_epoch = 0;
  int64_t start_step = 0;
  const std::string fingerprint = spec.Fingerprint();
  if (text.resume) {
    auto latest = checkpoints.LoadLatest();
    if (latest.ok()) {
      if (latest->fingerprint != fingerprint) {
        return FailedPreconditionError(
            "cannot resume: the checkpoints in " + spec.output_dir +
            "/checkpoints were written by a different job spec (fingerprint " +
            latest->fingerprint.substr(0, 12) + ", this spec " + fingerprint.substr(0, 12) + ")");
      }
      start_epoch = latest->epochs_done;
      start_step = latest->state.step;
      log_->info("resuming job {} after epoch {}", spec.name, start_epoch);
    } else if (latest.status().code() == StatusCode::kNotFound) {
      log_->info("no checkpoint to resume in {}; starting from scratch", spec.output_dir);
    } else {
      return latest.status();
    }
  }

  MRTRAIN_RETURN_IF_ERROR(AwaitWorkers());
  const uint64_t job = queued.id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_text_ = text;
    job_text_.job_id = job;
  }

  // 1. Every worker parses the spec and opens the datasets.
  Step setup;
  setup.kind = Step::Kind::kSpec;
  setup.what = "job setup";
  {
    std::lock_guard<std::mutex> lock(mu_);
    setup.waiting.insert(job_workers_.begin(), job_workers_.end());
  }
  setup.launch_target = [this](int64_t w) {
    return SendToWorkerLocked(static_cast<uint32_t>(w), job_text_);
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(setup));
  if (setup.ready.empty()) return UnavailableError("every worker of the job was lost");
  for (const msg::JobReady& r : setup.ready) {
    const msg::JobReady& first = setup.ready.front();
    if (r.train_partitions != first.train_partitions || r.test_partitions != first.test_partitions ||
        r.validation_partitions != first.validation_partitions) {
      return FailedPreconditionError(
          "the workers see different datasets (train partitions " +
          std::to_string(first.train_partitions) + " vs " + std::to_string(r.train_partitions) +
          "): every worker must see the same files under the same paths");
    }
  }
  partitions_[0] = setup.ready.front().train_partitions;
  partitions_[1] = setup.ready.front().test_partitions;
  partitions_[2] = setup.ready.front().validation_partitions;

  // 2. The partitions are loaded into the workers' caches (where their tasks will then run), and
  // their summaries fix the data's shape.
  std::vector<PartitionSummary> train, test, validation;
  MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kTrain, spec, &train));
  if (partitions_[1] > 0) MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kTest, spec, &test));
  if (partitions_[2] > 0) {
    MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kValidation, spec, &validation));
  }
  JobMetadata metadata;
  for (const auto* set : {&train, &test, &validation}) {
    for (const PartitionSummary& p : *set) {
      metadata.skipped_records += p.skipped_records;
      for (const std::string& why : p.skipped_samples) log_->warn("skipped {}", why);
    }
  }
  const api::DataShape shape = ShapeOf(train, spec);
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(test, shape, "test"));
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(validation, shape, "validation"));
  MRTRAIN_ASSIGN_OR_RETURN(ModelLayout layout, LayoutFor(*mapper, shape, spec));

  // 3. Reducer shards go round-robin over the workers; every worker builds the model.
  {
    std::lock_guard<std::mutex> lock(mu_);
    shape_ = shape;
    num_reducers_ = spec.reducers;
    committed_epochs_ = start_epoch;
    committed_step_ = start_step;
    max_recoveries_ = std::max(1, spec.max_attempts);
    const auto partitioner = shuffle::MakePartitioner(
        spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort ? shuffle::ShuffleMode::kSort
                                                               : shuffle::ShuffleMode::kHash,
        layout, spec.reducers);
    shard_ranges_.clear();
    for (int s = 0; s < spec.reducers; ++s) {
      shard_ranges_.push_back(DescribeKeys(shuffle::KeysOfShard(*partitioner, layout, s)));
    }
  }
  // A worker lost while the shards are placed is recovered from like one lost later.
  if (Status placed = PlaceShards(start_epoch, start_step); !placed.ok()) {
    MRTRAIN_RETURN_IF_ERROR(Recover(placed).status());
  }
  log_->info("job {} ({}): {} parameters in {} blocks, {} train partitions, {} reducer shards "
             "on {} workers",
             job, spec.name, layout.num_parameters(), layout.keys().size(), partitions_[0],
             spec.reducers, job_workers_.size());

  metadata.fingerprint = fingerprint;
  metadata.model_type = spec.model_type;
  metadata.model_params = spec.model_params;
  metadata.data_shape = shape;
  metadata.update_rule = spec.update_rule;
  ClusterExecutor executor(this, layout, rule->NumSlots(), start_step);
  return RunTrainingLoop(spec, metadata, executor, start_epoch, queued.listener.get());
}

msg::StartTraining MasterService::Impl::StartTrainingFor(uint32_t worker, int64_t epochs,
                                                        int64_t step_count) const {
  msg::StartTraining m;
  m.job_id = active_job_;
  m.num_features = shape_.num_features;
  m.num_classes = shape_.num_classes;
  m.is_sparse = shape_.is_sparse;
  m.resume_epochs = epochs;
  m.step = step_count;
  for (size_t s = 0; s < shard_hosts_.size(); ++s) {
    if (shard_hosts_[s] == worker) m.hosted_shards.push_back(static_cast<int64_t>(s));
  }
  m.shard_addresses = shard_addresses_;
  m.placement = placement_;
  return m;
}

Status MasterService::Impl::PlaceShards(int64_t epochs, int64_t step_count) {
  Step start;
  start.kind = Step::Kind::kStart;
  start.what = epochs > 0 || step_count > 0
                   ? "restoring the reducer shards from the checkpoint after epoch " +
                         std::to_string(epochs)
                   : "model setup";
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Workers may have been lost since the last step returned.
    if (job_workers_.empty()) {
      FailJobLocked(UnavailableError("every worker of the job was lost"), /*recoverable=*/true);
      return job_error_;
    }
    shard_hosts_.clear();
    shard_addresses_.clear();
    // Answers to the StartTrainings of an earlier placement (a worker slow to answer before a
    // recovery) must not count for this one.
    start.placement = ++placement_;
    for (int s = 0; s < num_reducers_; ++s) {
      const uint32_t host = job_workers_[s % job_workers_.size()];
      shard_hosts_.push_back(host);
      shard_addresses_.push_back(workers_[host].data_address);
    }
    start.waiting.insert(job_workers_.begin(), job_workers_.end());
    step_count_ = step_count;
  }
  start.launch_target = [this, epochs, step_count](int64_t w) {
    return SendToWorkerLocked(static_cast<uint32_t>(w),
                              StartTrainingFor(static_cast<uint32_t>(w), epochs, step_count));
  };
  return RunStep(start);
}

Status MasterService::Impl::AdmitJoiners(bool start) {
  std::vector<uint32_t> joiners;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (job_workers_.empty()) {
      // Every worker was lost: the job waits for one to come (back), as it did at its start.
      log_->warn("job {} has no workers left; waiting up to {} ms for one to register",
                 active_job_, options_.worker_wait.count());
      queue_cv_.wait_for(lock, options_.worker_wait, [&] {
        if (stopping_ || cancelled_) return true;
        for (const auto& [id, w] : workers_) {
          if (!refused_.count(id)) return true;
        }
        return false;
      });
      if (stopping_ || cancelled_) return AbortedError("job cancelled");
    }
    for (const auto& [id, w] : workers_) {
      if (!refused_.count(id) &&
          std::find(job_workers_.begin(), job_workers_.end(), id) == job_workers_.end()) {
        joiners.push_back(id);
      }
    }
  }
  if (joiners.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return job_workers_.empty() ? UnavailableError("every worker of the job was lost")
                                : Status::Ok();
  }
  Step setup;
  setup.kind = Step::Kind::kSpec;
  setup.admitting = true;
  setup.what = "setting job " + std::to_string(active_job_) + " up on workers that joined";
  setup.waiting.insert(joiners.begin(), joiners.end());
  setup.launch_target = [this](int64_t w) {
    return SendToWorkerLocked(static_cast<uint32_t>(w), job_text_);
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(setup));
  std::vector<uint32_t> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t id : joiners) {
      if (refused_.count(id) || !workers_.count(id)) continue;
      admitted.push_back(id);
    }
    for (const msg::JobReady& r : setup.ready) {
      if (r.train_partitions != partitions_[0] || r.test_partitions != partitions_[1] ||
          r.validation_partitions != partitions_[2]) {
        // Which worker sent it is not in the message; a mismatch leaves every joiner of this
        // batch out rather than guess.
        log_->warn("a worker that joined sees different datasets (train partitions {} vs {}); "
                   "leaving the joiners out of job {}",
                   r.train_partitions, partitions_[0], active_job_);
        for (uint32_t id : admitted) refused_.insert(id);
        admitted.clear();
        break;
      }
    }
  }
  if (admitted.empty()) return Status::Ok();
  if (start) {
    Step ready;
    ready.kind = Step::Kind::kStart;
    ready.admitting = true;
    ready.what = "model setup on workers that joined";
    ready.waiting.insert(admitted.begin(), admitted.end());
    ready.placement = placement_;
    ready.launch_target = [this](int64_t w) {
      // It hosts no shard: the restore point is only for the record.
      return SendToWorkerLocked(
          static_cast<uint32_t>(w),
          StartTrainingFor(static_cast<uint32_t>(w), committed_epochs_, step_count_));
    };
    MRTRAIN_RETURN_IF_ERROR(RunStep(ready));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t id : admitted) {
    if (refused_.count(id) || !workers_.count(id)) continue;
    job_workers_.insert(std::upper_bound(job_workers_.begin(), job_workers_.end(), id), id);
    for (auto& s : schedulers_) {
      if (s) s->AddWorker(WorkerKey(id), kTasksPerSlot * workers_.at(id).slots);
    }
    log_->info("worker {} ({}) joined job {}", id, workers_.at(id).name, active_job_);
  }
  return Status::Ok();
}

Result<RestorePoint> MasterService::Impl::Recover(const Status& failure) {
  Status why = failure;
  while (true) {
    RestorePoint point;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!recoverable_ || cancelled_ || stopping_) return failure;
      if (++recoveries_ > max_recoveries_) {
        return Status(failure.code(),
                      "gave up after " + std::to_string(max_recoveries_) +
                          " recoveries without a checkpoint committed in between; the last: " +
                          failure.message());
      }
      ++total_recoveries_;
      job_error_ = Status::Ok();
      recoverable_ = false;
      point = RestorePoint{committed_epochs_, committed_step_};
    }
    log_->warn("job {}: {}; placing the reducer shards again and restoring them from the "
               "checkpoint after epoch {} (step {})",
               active_job_, why.ToString(), point.epochs, point.step);
    Status placed = AdmitJoiners(/*start=*/false);
    if (placed.ok()) placed = PlaceShards(point.epochs, point.step);
    if (placed.ok()) return point;
    why = placed;  // lost another worker meanwhile: try again, while attempts last
  }
}

void MasterService::Impl::RunJob(QueuedJob& queued) {
  jobs::JobSpec spec;
  Result<TrainingResult> result = Train(queued, &spec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t id : job_workers_) (void)SendToWorkerLocked(id, msg::EndJob{queued.id});
    JobRecord& record = records_[queued.id];
    record.state = result.ok() ? "succeeded" : cancelled_ ? "cancelled" : "failed";
    // A master that stops (or is stopped) mid-job leaves the job to the next one's --recover.
    if (journal_ && !stopping_) {
      journal_->RemoveJob(queued.id);
      PersistLocked();
    }
    if (!result.ok()) record.error = result.status().ToString();
    if (result.ok() && result->last) record.epochs_done = result->last->epoch;
    active_job_ = 0;
    job_workers_.clear();
    shard_hosts_.clear();
    shard_addresses_.clear();
    refused_.clear();
    unreachable_reports_.clear();
    recoverable_ = false;
    recoveries_ = 0;
    for (auto& rows : first_rows_) rows.clear();
    for (auto& s : schedulers_) s.reset();
    for (auto& n : partitions_) n = 0;
  }
  if (result.ok()) {
    log_->info("job {} ({}) succeeded: {}", queued.id, spec.name, result->model_path);
  } else {
    log_->error("job {} ({}) failed: {}", queued.id, spec.name, result.status().ToString());
  }
  if (queued.listener) {
    queued.listener->OnFinished(result.status(), result.ok() ? &*result : nullptr);
  }
}

Result<api::MapStats> MasterService::Impl::MapRound(const RoundRequest& request) {
  bool joiners = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, w] : workers_) {
      joiners = joiners || (!refused_.count(id) && std::find(job_workers_.begin(),
                                                             job_workers_.end(),
                                                             id) == job_workers_.end());
    }
  }
  // Workers that registered since the last round join here and take over their share of the
  // partitions (a failure to set one up only leaves it out).
  if (joiners) MRTRAIN_RETURN_IF_ERROR(AdmitJoiners(/*start=*/true));
  Step step;
  step.kind = Step::Kind::kMap;
  step.epoch = request.epoch;
  step.round = request.round;
  step.what = "epoch " + std::to_string(request.epoch + 1) + " round " +
              std::to_string(request.round + 1) + ": map tasks";
  const uint64_t job = active_job_;
  step.launch_task = [this, job, request](const WorkerEntry& w, int64_t p, int attempt) {
    return SendCounted(*w.connection, msg::RunMapTask{job, request.epoch, request.round, p,
                                                      attempt, request.step,
                                                      request.learning_rate});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(msg::DataSet::kTrain, step));
  return SumInPartitionOrder(step.stats);
}

Status MasterService::Impl::ReduceRound(const RoundRequest& request, int64_t examples) {
  Step step;
  step.kind = Step::Kind::kReduce;
  step.epoch = request.epoch;
  step.round = request.round;
  step.update = request.step;
  step.what = "epoch " + std::to_string(request.epoch + 1) + " round " +
              std::to_string(request.round + 1) + ": reduce";
  const uint64_t job = active_job_;
  for (size_t s = 0; s < shard_hosts_.size(); ++s) step.waiting.insert(static_cast<int64_t>(s));
  step.launch_target = [this, job, request, examples](int64_t s) {
    return SendToWorkerLocked(shard_hosts_[s],
                              msg::ReduceRound{job, request.epoch, request.round, s, request.step,
                                               request.learning_rate, examples});
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(step));
  std::lock_guard<std::mutex> lock(mu_);
  step_count_ = request.step;
  return Status::Ok();
}

Result<api::MapStats> MasterService::Impl::EvaluateSet(msg::DataSet set, int64_t step_count) {
  Step step;
  step.kind = Step::Kind::kEvaluate;
  step.round = step_count;  // EvalDone carries its task's step: older results do not match
  step.what = std::string("evaluating data.") + msg::DataSetName(set);
  const uint64_t job = active_job_;
  step.launch_task = [this, job, set, step_count](const WorkerEntry& w, int64_t p, int attempt) {
    return SendCounted(*w.connection, msg::EvaluateTask{job, set, p, attempt, step_count});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(set, step));
  return SumInPartitionOrder(step.stats);
}

Status MasterService::Impl::SaveShards(CheckpointManifest manifest, CheckpointDir& dir) {
  Step step;
  step.kind = Step::Kind::kSave;
  step.epoch = manifest.epochs_done;
  step.what = "checkpoint after epoch " + std::to_string(manifest.epochs_done);
  const uint64_t job = active_job_;
  const int num_shards = static_cast<int>(shard_hosts_.size());
  for (int s = 0; s < num_shards; ++s) step.waiting.insert(s);
  step.saved.resize(num_shards);
  step.launch_target = [&, job](int64_t s) {
    return SendToWorkerLocked(
        shard_hosts_[s],
        msg::SaveShard{job, s, manifest.epochs_done,
                       dir.ShardPath(manifest.epochs_done, static_cast<int>(s), num_shards)});
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(step));
  for (int s = 0; s < num_shards; ++s) {
    ShardFileInfo info;
    // The manifest names shard files relative to the checkpoint directory.
    info.name = dir.ShardPath(manifest.epochs_done, s, num_shards).substr(dir.dir().size() + 1);
    info.bytes = step.saved[s].bytes;
    info.crc32c = step.saved[s].crc32c;
    manifest.shards.push_back(info);
  }
  MRTRAIN_RETURN_IF_ERROR(dir.Commit(manifest));
  // The new restore point: workers drop the map output they kept for the steps before it.
  std::lock_guard<std::mutex> lock(mu_);
  records_[active_job_].epochs_done = manifest.epochs_done;
  committed_epochs_ = manifest.epochs_done;
  committed_step_ = manifest.step;
  recoveries_ = 0;
  PersistLocked();
  for (uint32_t id : job_workers_) {
    (void)SendToWorkerLocked(id, msg::CheckpointCommitted{active_job_, manifest.epochs_done,
                                                          manifest.step});
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

MasterService::MasterService(Transport* transport, MasterOptions options)
    : impl_(std::make_shared<Impl>(transport, std::move(options))) {}

MasterService::~MasterService() { Stop(); }

Result<std::string> MasterService::Start() { return impl_->Start(); }

uint64_t MasterService::Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener) {
  return impl_->Submit(std::move(job), std::move(listener));
}

void MasterService::Cancel(uint64_t job_id) { impl_->Cancel(job_id); }

std::string MasterService::StatusJson() const { return impl_->StatusJson(); }

int64_t MasterService::control_bytes() const { return impl_->control_bytes(); }

void MasterService::Stop(bool shutdown_workers) { impl_->Stop(shutdown_workers); }

}  // namespace mrtrain::runtime
