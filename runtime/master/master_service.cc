#include "runtime/master/master_service.h"

#include "runtime/master/master_impl.h"

namespace mrtrain::runtime {

namespace {

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

// Streams a job's progress to a submit client over its connection, through the master's
// outbox, so it follows the "queued" reply.
class RemoteListener : public JobListener {
 public:
  RemoteListener(uint64_t job_id, std::shared_ptr<Connection> connection,
                 std::weak_ptr<MasterService::Impl> master)
      : job_id_(job_id), connection_(std::move(connection)), master_(std::move(master)) {}

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
    if (status.ok() && result->predicted) {
      const PredictTotals& p = *result->predicted;
      j["predicted"] = {{"out_dir", p.out_dir}, {"rows", p.rows},
                        {"correct", p.correct}, {"classifier", p.classifier},
                        {"rmse", p.rmse},       {"skipped_records", p.skipped_records}};
    } else if (status.ok()) {
      j["model"] = result->model_path;
      j["npz"] = result->npz_path;
      j["finished_before"] = !result->last.has_value();
    } else {
      j["error"] = status.ToString();
    }
    Send(msg::JobStatus{job_id_, status.ok() ? msg::JobState::kSucceeded : msg::JobState::kFailed,
                        DumpUserJson(j)});
  }

 private:
  template <typename M>
  void Send(const M& m) {
    // A gone client (or master) is not the job's problem.
    if (auto master = master_.lock()) master->SendToClient(connection_, m);
  }

  const uint64_t job_id_;
  const std::shared_ptr<Connection> connection_;
  const std::weak_ptr<MasterService::Impl> master_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Lifecycle

void MasterService::Impl::UnlockAndFlush() {
  if (flushing_ || outbox_.empty()) return mu_.Unlock();
  flushing_ = true;
  while (!outbox_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(outbox_);
    mu_.Unlock();
    for (auto& io : batch) io();
    mu_.Lock();
  }
  flushing_ = false;
  mu_.Unlock();
}

void MasterService::Impl::QueueJournalLocked(std::function<void(JobJournal&)> write) {
  outbox_.push_back([this, write = std::move(write)] { write(*journal_); });
}

void MasterService::Impl::EnqueueLocked(QueuedJob job) {
  job.text.job_id = job.id;
  records_[job.id].name = job.text.source;
  if (journal_) {
    QueueJournalLocked([this, id = job.id, text = job.text](JobJournal& journal) {
      Status kept = journal.AddJob(id, text);
      if (!kept.ok()) log_->error("job {} will not survive a restart: {}", id, kept.ToString());
    });
  }
  queue_.push_back(std::move(job));
  PersistLocked();
  queue_cv_.SignalAll();
}

void MasterService::Impl::PersistLocked() {
  if (!journal_) return;
  std::vector<JournalEntry> unfinished;
  for (const auto& [id, r] : records_) {
    if (r.state == "queued" || r.state == "running") {
      unfinished.push_back(JournalEntry{id, r.state, r.epochs_done});
    }
  }
  QueueJournalLocked([this, next = next_job_id_, unfinished](JobJournal& journal) {
    Status written = journal.WriteState(next, unfinished);
    if (!written.ok()) log_->error("cannot record the jobs' state: {}", written.ToString());
  });
}

Status MasterService::Impl::RecoverJobs() {
  MRTRAIN_ASSIGN_OR_RETURN(JobJournal::Recovered recovered, journal_->Load());
  Locked lock(this);
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
    if (options_.recover) {
      MRTRAIN_RETURN_IF_ERROR(
          RecoverJobs().WithContext("cannot recover the jobs recorded in " + options_.state_dir));
    }
  }
  Result<std::string> listened = transport_->Listen(options_.listen_address, Handler());
  if (!listened.ok()) {
    return listened.status().WithContext("cannot listen on " + options_.listen_address);
  }
  const std::string address = *listened;
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
  {
    Locked lock(this);
    if (stopping_) return;
    ++tick_;
    const int64_t limit =
        std::max<int64_t>(1, options_.heartbeat_timeout.count() /
                                 std::max<int64_t>(1, options_.heartbeat_interval.count()));
    std::vector<WorkerId> lost;
    for (const auto& [id, w] : workers_) {
      if (tick_ - w.last_heard > limit) lost.push_back(id);
    }
    for (WorkerId id : lost) {
      DropWorkerLocked(id, "nothing heard for " +
                               std::to_string(options_.heartbeat_timeout.count()) +
                               " ms (heartbeat timeout)");
    }
  }
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
    Locked lock(this);
    if (stopping_) return;
    clock_ms_ += options_.speculation_interval.count();
    ApplyLocked(tracker_.Speculate(clock_ms_, options_.speculation_multiple,
                                   options_.speculation_min.count()));
  }
  ScheduleSpeculation();
}

void MasterService::Impl::Stop(bool shutdown_workers, int exit_code) {
  std::vector<std::shared_ptr<Connection>> connections;
  {
    Locked lock(this);
    if (stopping_ && !job_thread_.joinable()) return;
    stopping_ = true;
    cancelled_ = true;
    ApplyLocked(tracker_.FailAll(AbortedError("the master is stopping")));
    for (auto& [id, w] : workers_) {
      if (shutdown_workers) {
        (void)QueueLocked(w.connection, msg::Shutdown{"the master is stopping", exit_code});
      }
      connections.push_back(w.connection);
    }
    queue_cv_.SignalAll();
  }
  if (job_thread_.joinable()) job_thread_.join();
  // Jobs that never ran are failed, so no submitter waits for ever.
  std::deque<QueuedJob> left;
  {
    Locked lock(this);
    // After what was queued for them (a Shutdown is not cut off by its connection's close).
    for (auto& c : connections) QueueCloseLocked(c);
    left.swap(queue_);
  }
  for (QueuedJob& job : left) {
    if (job.listener) job.listener->OnFinished(AbortedError("the master stopped"), nullptr);
  }
}

uint64_t MasterService::Impl::Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener) {
  uint64_t id;
  {
    Locked lock(this);
    id = next_job_id_++;
    EnqueueLocked(QueuedJob{id, std::move(job), std::move(listener)});
  }
  return id;
}

void MasterService::Impl::Cancel(uint64_t job_id) {
  Locked lock(this);
  if (job_id == active_job_) {
    cancelled_ = true;
    ApplyLocked(tracker_.FailAll(AbortedError("job cancelled")));
    queue_cv_.SignalAll();  // it may be waiting for workers
    return;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->id != job_id) continue;
    records_[job_id].state = "cancelled";
    if (journal_) {
      QueueJournalLocked([job_id](JobJournal& journal) { journal.RemoveJob(job_id); });
      PersistLocked();
    }
    ForgetSubmitterLocked(job_id);
    // Told outside the queue: the listener may send on a connection.
    auto listener = it->listener;
    queue_.erase(it);
    if (listener) {
      std::thread([listener] {
        listener->OnFinished(AbortedError("job cancelled"), nullptr);
      }).detach();
    }
    return;
  }
}

std::string MasterService::Impl::StatusJsonLocked() const {
  nlohmann::json j;
  j["workers"] = nlohmann::json::array();
  for (const auto& [id, w] : workers_) {
    nlohmann::json worker = {
        {"id", id.value}, {"name", w.name}, {"slots", w.slots}, {"data_address", w.data_address}};
    AddWorkerStatusLocked(id, w, &worker);
    j["workers"].push_back(worker);
  }
  j["jobs"] = nlohmann::json::array();
  for (const auto& [id, r] : records_) {
    nlohmann::json job = {{"id", id},
                          {"name", r.name},
                          {"state", r.state},
                          {"epochs_done", r.epochs_done},
                          {"epochs", r.epochs}};
    if (!r.error.empty()) job["error"] = r.error;
    metrics_.AddJobStatus(id, &job);
    j["jobs"].push_back(job);
  }
  j["control_bytes"] = control_bytes_.load();
  j["dropped_results"] = tracker_.dropped();
  j["recoveries"] = total_recoveries_;
  j["backup_tasks"] = backup_tasks_;
  return DumpUserJson(j);
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
    Locked lock(this);
    if (auto it = worker_of_.find(c.get()); it != worker_of_.end()) {
      const WorkerId id = it->second;
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

void MasterService::Impl::ForgetSubmitterLocked(uint64_t job_id) {
  for (auto it = submitter_of_.begin(); it != submitter_of_.end();) {
    it = it->second == job_id ? submitter_of_.erase(it) : std::next(it);
  }
}

void MasterService::Impl::OnWorkerLostLocked(WorkerId id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const std::string name = it->second.name;
  workers_.erase(it);
  auto in_job = std::find(job_workers_.begin(), job_workers_.end(), id);
  if (in_job == job_workers_.end() || stopping_) {
    log_->info("worker {} ({}) left: {}", id.value, name, why);
    ApplyLocked(tracker_.OnWorkerLost(id, /*in_job=*/false, clock_ms_));
    return;
  }
  log_->warn("worker {} ({}) lost during job {}: {}", id.value, name, active_job_, why);
  job_workers_.erase(in_job);
  for (auto& s : schedulers_) {
    if (s) s->RemoveWorker(id.ToString());
  }
  // Its reducer shards are gone with it: the job goes on once they are placed again and
  // restored (Recover), which the step now running hands over to by failing.
  for (size_t s = 0; s < shard_hosts_.size(); ++s) {
    if (shard_hosts_[s] == id) {
      return FailJobLocked(
          UnavailableError("worker " + id.ToString() + " (" + name + ") hosting reducer shard " +
                           std::to_string(s) + " was lost: " + why),
          /*recoverable=*/true);
    }
  }
  if (job_workers_.empty()) {
    return FailJobLocked(UnavailableError("every worker of the job was lost"),
                         /*recoverable=*/true);
  }
  // Its tasks go elsewhere; steps of setup go on without it.
  ApplyLocked(tracker_.OnWorkerLost(id, /*in_job=*/true, clock_ms_));
}

void MasterService::Impl::FailJobLocked(const Status& error, bool recoverable) {
  if (job_error_.ok()) {
    job_error_ = error;
    recoverable_ = recoverable;
  } else {
    recoverable_ = recoverable_ && recoverable;
  }
  ApplyLocked(tracker_.FailAll(job_error_));
}

void MasterService::Impl::DropWorkerLocked(WorkerId id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  QueueCloseLocked(it->second.connection);
  worker_of_.erase(it->second.connection.get());
  OnWorkerLostLocked(id, why);
}

void MasterService::Impl::ApplyLocked(const StepActions& actions) {
  for (const StepAction& a : actions) {
    Step& step = *static_cast<Step*>(a.step);
    switch (a.type) {
      case StepAction::Type::kFinish:
        step.done.set_value(a.status);
        break;
      case StepAction::Type::kDropWorker:
        log_->error("{}: worker {} is {}; declaring it lost", step.what, a.worker.value, a.why);
        DropWorkerLocked(a.worker, a.why);
        break;
      case StepAction::Type::kSendTarget: {
        if (step.finished) break;  // an earlier send of the step failed it
        Status sent = step.launch_target(a.index);
        if (!sent.ok()) ApplyLocked(tracker_.OnSendFailed(step, a.index, sent));
        if (!sent.ok() && step.admitting) {
          log_->warn("{}: worker {} is left out of job {}: {}", step.what, a.worker.value,
                     active_job_, sent.ToString());
        }
        break;
      }
      case StepAction::Type::kSendTask: {
        if (step.finished) break;
        auto it = workers_.find(a.worker);
        if (it == workers_.end()) break;  // its loss is being handled
        if (a.backup_of) {
          const BackupTask& b = *a.backup_of;
          ++backup_tasks_;
          metrics_.OnBackupAttempt(active_job_, it->second.name);
          log_->warn(
              "{}: {} on worker {} has run {} ms (median {} ms); backup attempt {} on "
              "worker {} ({})",
              step.what, DescribeTask(step, b.slow.partition, b.slow.attempt), b.slow.worker,
              clock_ms_ - b.slow.started_ms, b.median_ms, b.backup.attempt, b.backup.worker,
              it->second.name);
        }
        if (step.kind == Step::Kind::kMap) {
          metrics_.OnMapTaskLaunched(active_job_, a.index, a.attempt,
                                     std::chrono::steady_clock::now());
        }
        Status sent = step.launch_task(it->second, a.index, a.attempt);
        if (!sent.ok()) {
          log_->warn("cannot send a {}task to worker {}: {}", a.backup_of ? "backup " : "",
                     a.worker.value, sent.ToString());
        }
        break;
      }
    }
  }
}

void MasterService::Impl::OnTaskDoneLocked(const StepKey& report, int64_t partition, int attempt,
                                           WorkerId worker,
                                           const std::function<void(Step&)>& apply) {
  Step* step = static_cast<Step*>(tracker_.Match(report));
  if (!step) return;  // a late result of a finished step, or of another job
  bool accepted = false;
  StepActions next = tracker_.OnTaskDone(*step, partition, attempt, worker, clock_ms_, &accepted);
  if (accepted) apply(*step);
  ApplyLocked(next);
}

void MasterService::Impl::OnTargetDoneLocked(const StepKey& report, int64_t target, WorkerId worker,
                                             const std::function<void(Step&)>& apply) {
  Step* step = static_cast<Step*>(tracker_.Match(report));
  if (!step) return;
  bool accepted = false;
  StepActions next = tracker_.OnTargetDone(*step, target, worker, &accepted);
  if (accepted) apply(*step);
  ApplyLocked(next);
}

void MasterService::Impl::OnTaskFailedLocked(const msg::TaskFailed& f, WorkerId worker) {
  // The running step the failure is about (a map step and a reduce may run together). Map
  // failures carry their epoch and round, evaluation failures their step (in round), setup
  // failures of a start its placement (in round).
  StepKey report{Step::Kind::kSpec,
                 f.job_id,
                 f.set,
                 f.epoch,
                 f.round,
                 /*update=*/-1,
                 static_cast<uint64_t>(f.round)};
  switch (f.kind) {
    case msg::TaskKind::kMap:
      report.kind = Step::Kind::kMap;
      break;
    case msg::TaskKind::kLoad:
      report.kind = Step::Kind::kLoad;
      break;
    case msg::TaskKind::kEvaluate:
      report.kind = Step::Kind::kEvaluate;
      break;
    case msg::TaskKind::kPredict:
      report.kind = Step::Kind::kPredict;
      break;
    case msg::TaskKind::kReduce:
      report.kind = Step::Kind::kReduce;
      break;
    case msg::TaskKind::kSave:
      report.kind = Step::Kind::kSave;
      break;
    case msg::TaskKind::kSetup:
      report.kind = RunningLocked(Step::Kind::kSpec) ? Step::Kind::kSpec : Step::Kind::kStart;
      break;
  }
  Step* step = static_cast<Step*>(tracker_.Match(report));
  if (!step) return;
  auto it = workers_.find(worker);
  const std::string name = it != workers_.end() ? it->second.name : "?";
  const Status cause(f.code, f.message);
  switch (f.kind) {
    case msg::TaskKind::kMap:
    case msg::TaskKind::kLoad:
    case msg::TaskKind::kEvaluate:
    case msg::TaskKind::kPredict: {
      const Step::Kind kind = step->kind;
      // Map tasks are numbered by node: partitions [partition, partition + partition_count).
      const int64_t task =
          kind == Step::Kind::kMap ? MapTaskOf(f.partition, f.partition_count) : f.partition;
      if (task < 0) {
        tracker_.CountDropped();
        return;
      }
      log_->warn("{}: {} failed on worker {} ({}): {}", step->what,
                 DescribeTask(*step, task, f.attempt), worker.value, name, cause.ToString());
      // A reducer shard's host that mappers cannot reach is blamed instead of the task (a
      // task is not the worse for it), and declared lost once it has been reported often
      // enough, so a host cut off worker its peers but not worker the master is recovered worker.
      const bool host_unreachable = kind == Step::Kind::kMap && f.shard >= 0 &&
                                    static_cast<size_t>(f.shard) < shard_hosts_.size() &&
                                    f.code == StatusCode::kUnavailable;
      if (host_unreachable) {
        const WorkerId host = shard_hosts_[f.shard];
        if (++unreachable_reports_[host] >= kUnreachableReports && workers_.count(host)) {
          DropWorkerLocked(host, "its reducer shard " + std::to_string(f.shard) +
                                     " could not be reached by mappers " +
                                     std::to_string(kUnreachableReports) +
                                     " times; last: " + f.message);
          if (step->finished) return;
        }
      }
      ApplyLocked(
          tracker_.OnTaskFailed(*step, task, f.attempt, worker, cause, /*counts=*/!host_unreachable,
                                std::string("data.") + msg::DataSetName(f.set) + ", " + step->what +
                                    " (worker " + worker.ToString() + " is " + name + ")",
                                clock_ms_));
      return;
    }
    case msg::TaskKind::kReduce:
    case msg::TaskKind::kSave:
    case msg::TaskKind::kSetup: {
      // Only a failure of what runs now fails it: a stale report is dropped.
      const int64_t target = f.kind == msg::TaskKind::kSetup ? worker.value : f.shard;
      if (!tracker_.Awaits(*step, target, worker)) {
        tracker_.CountDropped();
        return;
      }
      const std::string where = f.kind == msg::TaskKind::kSetup
                                    ? "worker " + worker.ToString() + " (" + name + ")"
                                    : "reducer shard " + std::to_string(f.shard) + " on worker " +
                                          worker.ToString() + " (" + name + ")";
      StepActions next = tracker_.OnTargetFailed(
          *step, target, Status(f.code, step->what + ": " + where + ": " + f.message),
          max_recoveries_);
      if (step->admitting) {
        // A late joiner that cannot set the job up is left out; the job goes on.
        log_->warn("{}: {} is left out of job {}: {}", step->what, where, active_job_, f.message);
        refused_.insert(worker);
      } else if (!step->finished) {
        // A shard file that failed to write (or to read back the same) is written again.
        log_->warn("{}: {}: {}; writing it again", step->what, where, f.message);
      }
      ApplyLocked(next);
      return;
    }
  }
}

void MasterService::Impl::OnMessage(const std::shared_ptr<Connection>& c, MessageType type,
                                    std::string payload) {
  Locked lock(this);
  auto worker_it = worker_of_.find(c.get());
  const bool is_worker = worker_it != worker_of_.end();
  if (is_worker) control_bytes_ += static_cast<int64_t>(payload.size());
  const WorkerId worker = is_worker ? worker_it->second : WorkerId{};
  if (is_worker) {
    workers_[worker].last_heard = tick_;
    workers_[worker].heard_at = std::chrono::steady_clock::now();
  }
  auto bad = [&](const Status& s) {
    mu_.AssertHeld();  // called only below, under the lock
    log_->error("bad {} from {}: {}; closing", MessageTypeName(static_cast<uint16_t>(type)),
                c->peer(), s.ToString());
    QueueCloseLocked(c);
  };
  if (!is_worker) {
    switch (type) {
      case MessageType::kHello: {
        auto m = msg::DecodeAs<msg::Hello>(payload);
        if (!m.ok()) return bad(m.status());
        control_bytes_ += static_cast<int64_t>(payload.size());
        WorkerEntry w;
        w.id = WorkerId{next_worker_id_++};
        w.name = m->worker_name;
        w.slots = std::max<int>(1, static_cast<int>(m->slots));
        w.data_address = ReachableAddress(m->data_address, c->peer());
        w.connection = c;
        worker_of_[c.get()] = w.id;
        log_->info("worker {} ({}) joined: {} slots, data plane at {}", w.id.value, w.name, w.slots,
                   w.data_address);
        w.last_heard = tick_;
        w.heard_at = std::chrono::steady_clock::now();
        (void)QueueLocked(c, msg::Welcome{w.id.value, options_.heartbeat_interval.count()});
        workers_[w.id] = std::move(w);
        queue_cv_.SignalAll();  // a job may be waiting for workers
        return;
      }
      case MessageType::kJobSpecText: {
        auto m = msg::DecodeAs<msg::JobSpecText>(payload);
        if (!m.ok()) return bad(m.status());
        const uint64_t id = next_job_id_++;
        submitter_of_[c.get()] = id;
        log_->info("job {} submitted from {} ({})", id, c->peer(), m->source);
        EnqueueLocked(QueuedJob{id, std::move(*m),
                                std::make_shared<RemoteListener>(id, c, weak_from_this())});
        // Queued after the job's journal entry: a client told "queued" has its job on disk.
        (void)QueueLocked(
            c, msg::JobStatus{id, msg::JobState::kQueued, nlohmann::json{{"job_id", id}}.dump()},
            /*count=*/false);
        return;
      }
      case MessageType::kStatusRequest:
        (void)QueueLocked(c, msg::JobStatus{0, msg::JobState::kRunning, StatusJsonLocked()},
                          /*count=*/false);
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
        QueueCloseLocked(c);
        return;
    }
  }

  switch (type) {
    case MessageType::kHeartbeat:
      return;
    case MessageType::kJobReady: {
      auto m = msg::DecodeAs<msg::JobReady>(payload);
      if (!m.ok()) return bad(m.status());
      // An answer to an earlier placement (a slow worker before a recovery) is dropped.
      const StepKey report{
          m->phase == msg::JobReady::kSpec ? Step::Kind::kSpec : Step::Kind::kStart,
          m->job_id,
          msg::DataSet::kTrain,
          0,
          0,
          -1,
          m->placement};
      OnTargetDoneLocked(report, worker.value, worker, [&](Step& s) { s.ready[worker] = *m; });
      return;
    }
    case MessageType::kPartitionLoaded: {
      auto m = msg::DecodeAs<msg::PartitionLoaded>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskDoneLocked(StepKey{Step::Kind::kLoad, m->job_id, m->set}, m->partition, m->attempt,
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
      // Any result of the job's tasks tells its worker's peak, a late or duplicate one too.
      if (m->job_id == active_job_ && m->peak_rss_bytes > 0) {
        JobPeakRss::Worker& peak = worker_peaks_[worker];
        peak.id = worker.value;
        if (auto w = workers_.find(worker); w != workers_.end()) peak.name = w->second.name;
        peak.bytes = std::max(peak.bytes, m->peak_rss_bytes);
      }
      const int64_t task = MapTaskOf(m->partition, m->partition_count);
      if (task < 0) {
        tracker_.CountDropped();  // not a node this job's map tasks cover
        return;
      }
      bool accepted = false;  // the task's result, not a duplicate or a late one
      OnTaskDoneLocked(
          StepKey{Step::Kind::kMap, m->job_id, msg::DataSet::kTrain, m->epoch, m->round}, task,
          m->attempt, worker, [&](Step& s) {
            s.stats[task] = api::MapStats{m->loss_sum, m->examples, m->correct};
            accepted = true;
          });
      if (accepted) {
        metrics_.OnMapTaskDone(m->job_id, WorkerName(worker), task, m->attempt,
                               std::chrono::steady_clock::now(), m->examples, m->bytes_sent);
      }
      return;
    }
    case MessageType::kPredictDone: {
      auto m = msg::DecodeAs<msg::PredictDone>(payload);
      if (!m.ok()) return bad(m.status());
      OnTaskDoneLocked(StepKey{Step::Kind::kPredict, m->job_id, msg::DataSet::kTrain}, m->partition,
                       m->attempt, worker, [&](Step& s) { s.predicted[m->partition] = *m; });
      return;
    }
    case MessageType::kEvalDone: {
      auto m = msg::DecodeAs<msg::EvalDone>(payload);
      if (!m.ok()) return bad(m.status());
      // EvalDone carries its task's step (the round of its step): older results do not match.
      OnTaskDoneLocked(
          StepKey{Step::Kind::kEvaluate, m->job_id, m->set, 0, m->step}, m->partition, m->attempt,
          worker, [&](Step& s) {
            s.stats[m->partition] = api::MapStats{m->loss_sum, m->examples, m->correct};
          });
      return;
    }
    case MessageType::kShardCommitted: {
      auto m = msg::DecodeAs<msg::ShardCommitted>(payload);
      if (!m.ok()) return bad(m.status());
      // A repeated or late commit of another step must not complete this reduce.
      OnTargetDoneLocked(StepKey{Step::Kind::kReduce, m->job_id, msg::DataSet::kTrain, m->epoch,
                                 m->round, m->step},
                         m->shard, worker, [](Step&) {});
      return;
    }
    case MessageType::kShardSaved: {
      auto m = msg::DecodeAs<msg::ShardSaved>(payload);
      if (!m.ok()) return bad(m.status());
      OnTargetDoneLocked(
          StepKey{Step::Kind::kSave, m->job_id, msg::DataSet::kTrain, m->epochs_done}, m->shard,
          worker, [&](Step& s) { s.saved[m->shard] = *m; });
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
                 worker.value);
  }
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

std::optional<std::string> MasterService::HistoryJson(uint64_t job_id) const {
  return impl_->HistoryJson(job_id);
}

std::string MasterService::MetricsText() const { return impl_->MetricsText(); }

int64_t MasterService::control_bytes() const { return impl_->control_bytes(); }

void MasterService::Stop(bool shutdown_workers, int exit_code) {
  impl_->Stop(shutdown_workers, exit_code);
}

}  // namespace mrtrain::runtime
