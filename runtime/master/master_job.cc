// The master's job thread: a job's setup, placement of the reducer shards, the steps of its
// rounds, evaluations and checkpoints, and recovery from lost shard hosts.
#include "engine/base/malloc_tuning.h"
#include "engine/base/peak_rss.h"
#include "runtime/master/master_impl.h"

namespace mrtrain::runtime {

namespace {

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

// Whether two workers opened the same datasets (the partition counts they answered).
bool SameDatasets(const msg::JobReady& a, const msg::JobReady& b) {
  return a.train_partitions == b.train_partitions && a.test_partitions == b.test_partitions &&
         a.validation_partitions == b.validation_partitions;
}

// Statistics of tasks, added in the order of the partitions' reduction tree (as the workers add
// those of a map task's partitions), so the float sums depend neither on who ran what nor on
// how many partitions a task covers. by_task[i] covers partitions [i * node_count, ...).
api::MapStats SumInTreeOrder(const std::vector<api::MapStats>& by_task, int64_t node_count) {
  std::vector<shuffle::TreeNode> nodes;
  for (size_t i = 0; i < by_task.size(); ++i) {
    nodes.push_back(shuffle::NodeOfTask(static_cast<int64_t>(i), node_count));
  }
  return shuffle::TreeFold(nodes, by_task,
                           [](api::MapStats left, const api::MapStats& right) {
                             AddStats(right, &left);
                             return left;
                           })
      .value_or(api::MapStats{});
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
  Result<api::MapStats> RunOverlapped(const RoundRequest* map, const RoundRequest* reduce,
                                      int64_t examples) override {
    api::MapStats stats;
    if (map && reduce) {
      MRTRAIN_ASSIGN_OR_RETURN(stats, master_->MapAndReduce(*map, *reduce, examples));
    } else if (map) {
      MRTRAIN_ASSIGN_OR_RETURN(stats, master_->MapRound(*map));
    } else if (reduce) {
      MRTRAIN_RETURN_IF_ERROR(master_->ReduceRound(*reduce, examples));
    }
    if (reduce) step_ = reduce->step;
    return stats;
  }
  bool HasEvalSet(EvalSet set) const override { return master_->HasSet(ToDataSet(set)); }
  Result<api::MapStats> Evaluate(EvalSet set) override {
    return master_->EvaluateSet(ToDataSet(set), step_);
  }
  JobPeakRss PeakRss() const override { return master_->PeakRss(); }
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

}  // namespace

void MasterService::Impl::JobLoop() {
  while (true) {
    QueuedJob job;
    {
      Locked lock(this);
      while (!stopping_ && queue_.empty()) queue_cv_.Wait(&mu_);
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      // Active from the moment it leaves the queue, so a Cancel never falls between the two.
      active_job_ = job.id;
      cancelled_ = false;
      job_error_ = Status::Ok();
      records_[job.id].state = "running";
      worker_peaks_.clear();
      PersistLocked();
    }
    // Each job reports its own peak (where the kernel cannot reset it: since the start).
    if (!ResetPeakRss()) log_->debug("cannot reset the peak RSS; reporting it since the start");
    RunJob(job);
  }
}

Status MasterService::Impl::RunStep(Step& step) { return RunSteps({&step}); }

Status MasterService::Impl::RunSteps(const std::vector<Step*>& steps) {
  std::vector<std::future<Status>> done;
  for (Step* step : steps) done.push_back(step->done.get_future());
  uint64_t token;
  {
    Locked lock(this);
    if (cancelled_) return AbortedError(stopping_ ? "the master is stopping" : "job cancelled");
    if (!job_error_.ok()) return job_error_;
    for (Step* step : steps) step->job = active_job_;
    tracker_.Begin(std::vector<TrackedStep*>(steps.begin(), steps.end()));
    token = ++step_token_;
  }
  // The steps' bound is a transport timer, so it runs on the transport's clock (a test's fake
  // one too); the token keeps a late timer from touching later steps. It is armed before
  // anything is sent, so a peer that sees the steps' messages sees steps with a bound.
  ArmStepTimer(token);
  {
    Locked lock(this);
    for (Step* step : steps) {
      if (!step->finished) LaunchLocked(*step);
    }
  }
  // The timer, Cancel and Stop all complete the steps; a failed one completes the others.
  Status status;
  for (std::future<Status>& d : done) {
    Status s = d.get();
    if (status.ok()) status = s;
  }
  Locked lock(this);
  ++step_token_;  // their timer, if it fires anyway, now finds nothing to do
  step_timer_.Cancel();
  tracker_.End();
  return status;
}

void MasterService::Impl::LaunchLocked(Step& step) {
  ApplyLocked(tracker_.Launch(step, clock_ms_));
}

void MasterService::Impl::ArmStepTimer(uint64_t token) {
  std::weak_ptr<Impl> weak = shared_from_this();
  TimerHandle timer = transport_->RunAfter(options_.step_timeout, [weak, token] {
    if (auto self = weak.lock()) self->OnStepTimer(token);
  });
  // Kept so the step's end cancels it: a bound of minutes per step, left to come due, piled up
  // by the thousand in a master running many short steps.
  Locked lock(this);
  if (step_token_ == token) {
    step_timer_ = std::move(timer);
  } else {
    timer.Cancel();
  }
}

void MasterService::Impl::OnStepTimer(uint64_t token) {
  bool rearm = false;
  {
    Locked lock(this);
    if (step_token_ != token) return;
    const std::string limit = std::to_string(options_.step_timeout.count()) + " ms";
    // One step at a time: dropping the first one's stuck workers may end the others.
    for (TrackedStep* step : std::vector<TrackedStep*>(tracker_.running())) {
      ApplyLocked(tracker_.OnTimeout(*step, !job_error_.ok(), limit,
                                     [this](const TrackedStep& s, int64_t index, int attempt) {
                                       mu_.AssertHeld();  // called by OnTimeout, under the lock
                                       return DescribeWaitLocked(s, index, attempt);
                                     }));
    }
    rearm = tracker_.AnyUnfinished();
  }
  if (rearm) ArmStepTimer(token);
}

std::string MasterService::Impl::DescribeWaitLocked(const TrackedStep& step, int64_t index,
                                                    int attempt) const {
  if (step.scheduler) return DescribeTask(step, index, attempt);
  if (step.kind == Step::Kind::kReduce || step.kind == Step::Kind::kSave) {
    return "reducer shard " + std::to_string(index) + " (" + shard_ranges_[index] + ")";
  }
  return "its setup";
}

std::string MasterService::Impl::DescribeTask(const TrackedStep& step, int64_t task,
                                              int attempt) const {
  const int set = static_cast<int>(step.set);
  const int64_t num_partitions = partitions_[set];
  int64_t first = task, end = task + 1;
  if (step.kind == Step::Kind::kMap) {
    const shuffle::TreeNode node = shuffle::NodeOfTask(task, map_node_count_);
    first = node.lo;
    end = node.End(num_partitions);
  }
  std::string rows;
  if (static_cast<size_t>(end) < first_rows_[set].size()) {
    rows = ", rows [" + std::to_string(first_rows_[set][first]) + ", " +
           std::to_string(first_rows_[set][end]) + ")";
  }
  const std::string which =
      end == first + 1 ? " partition " + std::to_string(first)
                       : " partitions [" + std::to_string(first) + ", " + std::to_string(end) + ")";
  return "task for data." + std::string(msg::DataSetName(step.set)) + which + rows + " (attempt " +
         std::to_string(attempt) + ")";
}

int64_t MasterService::Impl::MapTaskOf(int64_t partition, int64_t partition_count) const {
  if (partition_count != map_node_count_ || partition % map_node_count_ != 0) return -1;
  return partition / map_node_count_;
}

void MasterService::Impl::PrepareTasksLocked(msg::DataSet set, int scheduler, Step& step) {
  schedulers_[scheduler]->StartRound();
  step.scheduler = schedulers_[scheduler].get();
  step.stats.resize(step.scheduler->num_partitions());
  step.summaries.resize(step.scheduler->num_partitions());
  step.set = set;
}

Status MasterService::Impl::RunTasks(msg::DataSet set, int scheduler, Step& step) {
  {
    Locked lock(this);
    PrepareTasksLocked(set, scheduler, step);
  }
  return RunStep(step);
}

Status MasterService::Impl::AwaitWorkers() {
  const size_t wanted = static_cast<size_t>(std::max(1, options_.min_workers));
  const auto deadline = std::chrono::steady_clock::now() + options_.worker_wait;
  Locked lock(this);
  while (!stopping_ && !cancelled_ && workers_.size() < wanted &&
         queue_cv_.WaitUntil(&mu_, deadline)) {
  }
  if (stopping_ || cancelled_) return AbortedError("job cancelled");
  if (workers_.size() < wanted) {
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
  uint64_t job;
  {
    // The set's scheduler lives for the job: it remembers where each partition was loaded.
    Locked lock(this);
    job = active_job_;
    schedulers_[index] = std::make_unique<TaskScheduler>(partitions_[index], spec.max_attempts);
    // Each worker gets two tasks per slot: the second waits in its queue, so a slot never idles
    // for the round trip of a MapTaskDone and the next RunMapTask.
    for (WorkerId id : job_workers_) {
      schedulers_[index]->AddWorker(id.ToString(), kTasksPerSlot * workers_.at(id).slots);
    }
    if (set == msg::DataSet::kTrain) {
      // Map task i (a node of map_node_count_ partitions) is planned on job worker i mod W, and
      // its partitions are loaded there: the first round then finds them in its cache.
      const int64_t tasks = (partitions_[index] + map_node_count_ - 1) / map_node_count_;
      const int64_t node_count = map_node_count_, num_partitions = partitions_[index];
      schedulers_[kMapTasks] = std::make_unique<TaskScheduler>(
          tasks, spec.max_attempts, [node_count, num_partitions](int64_t t) {
            const shuffle::TreeNode node = shuffle::NodeOfTask(t, node_count);
            if (node.End(num_partitions) == node.lo + 1) {
              return "partition " + std::to_string(node.lo);
            }
            return "partitions [" + std::to_string(node.lo) + ", " +
                   std::to_string(node.End(num_partitions)) + ")";
          });
      for (WorkerId id : job_workers_) {
        schedulers_[kMapTasks]->AddWorker(id.ToString(), kTasksPerSlot * workers_.at(id).slots);
      }
      for (int64_t t = 0; t < tasks && !job_workers_.empty(); ++t) {
        const std::string worker = job_workers_[t % job_workers_.size()].ToString();
        schedulers_[kMapTasks]->Prefer(t, worker);
        for (int64_t p = t * map_node_count_;
             p < std::min(partitions_[index], (t + 1) * map_node_count_); ++p) {
          schedulers_[index]->Prefer(p, worker);
        }
      }
    }
  }
  Step step;
  step.kind = Step::Kind::kLoad;
  step.what = std::string("loading data.") + msg::DataSetName(set);
  step.launch_task = [this, job, set](const WorkerEntry& w, int64_t p, int attempt) {
    mu_.AssertHeld();  // launch functions run under the lock
    return QueueLocked(w.connection, msg::LoadPartition{job, set, p, attempt});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(set, index, step));
  *summaries = std::move(step.summaries);
  Locked lock(this);
  first_rows_[index].assign(1, 0);
  for (const PartitionSummary& p : *summaries)
    first_rows_[index].push_back(first_rows_[index].back() + p.rows);
  return Status::Ok();
}

Status MasterService::Impl::SetUpWorkers(const QueuedJob& queued) {
  MRTRAIN_RETURN_IF_ERROR(AwaitWorkers());
  const uint64_t job = queued.id;
  const msg::JobSpecText& text = queued.text;
  {
    Locked lock(this);
    job_text_ = text;
    job_text_.job_id = job;
  }

  // 1. Every worker parses the spec and opens the datasets.
  Step setup;
  setup.kind = Step::Kind::kSpec;
  setup.what = "job setup";
  {
    Locked lock(this);
    for (WorkerId id : job_workers_) setup.waiting[id.value] = id;
  }
  setup.launch_target = [this](int64_t w) {
    mu_.AssertHeld();
    return SendToWorkerLocked(WorkerId::FromTarget(w), job_text_);
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(setup));
  if (setup.ready.empty()) return UnavailableError("every worker of the job was lost");
  const auto& [first_worker, first] = *setup.ready.begin();
  for (const auto& [worker, r] : setup.ready) {
    if (!SameDatasets(r, first)) {
      return FailedPreconditionError(
          "the workers see different datasets (train partitions " +
          std::to_string(first.train_partitions) + " on worker " + first_worker.ToString() + ", " +
          std::to_string(r.train_partitions) + " on worker " + worker.ToString() +
          "): every worker must see the same files under the same paths");
    }
  }
  int64_t partitions[3] = {first.train_partitions, first.test_partitions,
                           first.validation_partitions};
  {
    Locked lock(this);
    std::copy(partitions, partitions + 3, partitions_);
    // Fixed for the job: joiners and recoveries keep it (any cover of the tree gives the same
    // model anyway). One worker (local mode) gets the whole tree in one task.
    map_node_count_ = shuffle::NodeCountFor(
        partitions[0], static_cast<int64_t>(job_workers_.size()), options_.map_node_partitions);
  }
  return Status::Ok();
}

Result<TrainingResult> MasterService::Impl::Train(QueuedJob& queued, jobs::JobSpec* spec_out) {
  const msg::JobSpecText& text = queued.text;
  MRTRAIN_ASSIGN_OR_RETURN(jobs::JobSpec spec, UnpackJob(text, options_.plugin_cache_dir.empty()
                                                                   ? DefaultPluginCacheDir()
                                                                   : options_.plugin_cache_dir));
  *spec_out = spec;
  {
    Locked lock(this);
    records_[queued.id].name = spec.name;
    records_[queued.id].epochs = spec.epochs;
    metrics_.OnJobStarted(queued.id, spec.name);
  }
  if (!spec.predict_model.empty()) return Predict(queued, spec);
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
    auto latest = checkpoints.LatestCommitted();
    if (latest.ok()) {
      if (latest->fingerprint != fingerprint) {
        return FailedPreconditionError(
            "cannot resume: the checkpoints in " + spec.output_dir +
            "/checkpoints were written by a different job spec (fingerprint " +
            latest->fingerprint.substr(0, 12) + ", this spec " + fingerprint.substr(0, 12) + ")");
      }
      start_epoch = latest->epochs_done;
      start_step = latest->step;
      log_->info("resuming job {} after epoch {}", spec.name, start_epoch);
    } else if (latest.status().code() == StatusCode::kNotFound) {
      log_->info("no checkpoint to resume in {}; starting from scratch", spec.output_dir);
    } else {
      return latest.status();
    }
  }

  MRTRAIN_RETURN_IF_ERROR(SetUpWorkers(queued));
  const uint64_t job = queued.id;
  int64_t partitions[3];
  {
    Locked lock(this);
    std::copy(partitions_, partitions_ + 3, partitions);
  }

  // 2. The partitions are loaded into the workers' caches (where their tasks will then run), and
  // their summaries fix the data's shape.
  std::vector<PartitionSummary> train, test, validation;
  MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kTrain, spec, &train));
  if (partitions[1] > 0) MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kTest, spec, &test));
  if (partitions[2] > 0) {
    MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kValidation, spec, &validation));
  }
  JobMetadata metadata;
  for (const auto* set : {&train, &test, &validation}) {
    for (const PartitionSummary& p : *set) {
      metadata.skipped_records += p.skipped_records;
      for (const std::string& why : p.skipped_samples) log_->warn("skipped {}", why);
    }
  }
  MRTRAIN_RETURN_IF_ERROR(CheckSkipped(train, spec.train, "train"));
  if (spec.test) MRTRAIN_RETURN_IF_ERROR(CheckSkipped(test, *spec.test, "test"));
  if (spec.validation) {
    MRTRAIN_RETURN_IF_ERROR(CheckSkipped(validation, *spec.validation, "validation"));
  }
  const api::DataShape shape = ShapeOf(train, spec);
  if ((spec.model_type == "softmax" || spec.model_type == "mlp") &&
      !spec.model_params.Has("classes")) {
    // Said once: a stray label (10 among 0..9) would otherwise add a class silently.
    log_->info(
        "job {} ({}): model.classes is not set: {} classes, from the largest training "
        "label {}",
        job, spec.name, shape.num_classes, shape.num_classes - 1);
  }
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(test, shape, "test"));
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(validation, shape, "validation"));
  MRTRAIN_ASSIGN_OR_RETURN(ModelLayout layout, LayoutFor(*mapper, shape, spec));

  // 3. Reducer shards go round-robin over the workers; every worker builds the model.
  {
    Locked lock(this);
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
  size_t num_workers;
  int64_t node_count;
  {
    Locked lock(this);
    num_workers = job_workers_.size();
    node_count = map_node_count_;
  }
  log_->info(
      "job {} ({}): {} parameters in {} blocks, {} train partitions, {} reducer shards "
      "on {} workers, up to {} partitions per map task",
      job, spec.name, layout.num_parameters(), layout.keys().size(), partitions[0], spec.reducers,
      num_workers, std::min(node_count, partitions[0]));

  metadata.fingerprint = fingerprint;
  metadata.model_type = spec.model_type;
  metadata.model_params = spec.model_params;
  metadata.data_shape = shape;
  metadata.update_rule = spec.update_rule;
  ClusterExecutor executor(this, layout, rule->NumSlots(), start_step);
  JobProgress progress(this, job, queued.listener.get());
  return RunTrainingLoop(spec, metadata, executor, start_epoch, &progress);
}

msg::StartTraining MasterService::Impl::StartTrainingFor(WorkerId worker, int64_t epochs,
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
  start.what =
      epochs > 0 || step_count > 0
          ? "restoring the reducer shards from the checkpoint after epoch " + std::to_string(epochs)
          : "model setup";
  {
    Locked lock(this);
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
      const WorkerId host = job_workers_[s % job_workers_.size()];
      shard_hosts_.push_back(host);
      shard_addresses_.push_back(workers_[host].data_address);
    }
    for (WorkerId id : job_workers_) start.waiting[id.value] = id;
    step_count_ = step_count;
  }
  start.launch_target = [this, epochs, step_count](int64_t w) {
    mu_.AssertHeld();
    return SendToWorkerLocked(WorkerId::FromTarget(w),
                              StartTrainingFor(WorkerId::FromTarget(w), epochs, step_count));
  };
  return RunStep(start);
}

Status MasterService::Impl::AdmitJoiners(bool start) {
  std::vector<WorkerId> joiners;
  uint64_t job;
  {
    Locked lock(this);
    job = active_job_;
    if (job_workers_.empty()) {
      // Every worker was lost: the job waits for one to come (back), as it did at its start.
      log_->warn("job {} has no workers left; waiting up to {} ms for one to register", active_job_,
                 options_.worker_wait.count());
      const auto deadline = std::chrono::steady_clock::now() + options_.worker_wait;
      auto someone = [&]() REQUIRES(mu_) {
        for (const auto& [id, w] : workers_) {
          if (!refused_.count(id)) return true;
        }
        return false;
      };
      while (!stopping_ && !cancelled_ && !someone() && queue_cv_.WaitUntil(&mu_, deadline)) {
      }
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
    Locked lock(this);
    return job_workers_.empty() ? UnavailableError("every worker of the job was lost")
                                : Status::Ok();
  }
  Step setup;
  setup.kind = Step::Kind::kSpec;
  setup.admitting = true;
  setup.what = "setting job " + std::to_string(job) + " up on workers that joined";
  for (WorkerId id : joiners) setup.waiting[id.value] = id;
  setup.launch_target = [this](int64_t w) {
    mu_.AssertHeld();
    return SendToWorkerLocked(WorkerId::FromTarget(w), job_text_);
  };
  MRTRAIN_RETURN_IF_ERROR(RunStep(setup));
  std::vector<WorkerId> admitted;
  {
    Locked lock(this);
    msg::JobReady job_sets;
    job_sets.train_partitions = partitions_[0];
    job_sets.test_partitions = partitions_[1];
    job_sets.validation_partitions = partitions_[2];
    for (const auto& [worker, r] : setup.ready) {
      const WorkerId id = worker;
      if (refused_.count(id) || !workers_.count(id)) continue;
      if (!SameDatasets(r, job_sets)) {
        log_->warn(
            "worker {} joined but sees different datasets (train partitions {} vs {}); "
            "leaving it out of job {}",
            id.value, r.train_partitions, partitions_[0], active_job_);
        refused_.insert(id);
        continue;
      }
      admitted.push_back(id);
    }
  }
  if (admitted.empty()) return Status::Ok();
  if (start) {
    Step ready;
    ready.kind = Step::Kind::kStart;
    ready.admitting = true;
    ready.what = "model setup on workers that joined";
    for (WorkerId id : admitted) ready.waiting[id.value] = id;
    {
      Locked lock(this);
      ready.placement = placement_;
    }
    ready.launch_target = [this](int64_t w) {
      mu_.AssertHeld();
      // It hosts no shard: the restore point is only for the record.
      return SendToWorkerLocked(
          WorkerId::FromTarget(w),
          StartTrainingFor(WorkerId::FromTarget(w), committed_epochs_, step_count_));
    };
    MRTRAIN_RETURN_IF_ERROR(RunStep(ready));
  }
  Locked lock(this);
  for (WorkerId id : admitted) {
    if (refused_.count(id) || !workers_.count(id)) continue;
    job_workers_.insert(std::upper_bound(job_workers_.begin(), job_workers_.end(), id), id);
    for (auto& s : schedulers_) {
      if (s) s->AddWorker(id.ToString(), kTasksPerSlot * workers_.at(id).slots);
    }
    log_->info("worker {} ({}) joined job {}", id.value, workers_.at(id).name, active_job_);
  }
  return Status::Ok();
}

Result<RestorePoint> MasterService::Impl::Recover(const Status& failure) {
  Status why = failure;
  while (true) {
    RestorePoint point;
    uint64_t job;
    {
      Locked lock(this);
      if (!recoverable_ || cancelled_ || stopping_) return failure;
      if (++recoveries_ > max_recoveries_) {
        return Status(failure.code(),
                      "gave up after " + std::to_string(max_recoveries_) +
                          " recoveries without a checkpoint committed in between; the last: " +
                          failure.message());
      }
      ++total_recoveries_;
      metrics_.OnRecovery(active_job_);
      job_error_ = Status::Ok();
      recoverable_ = false;
      point = RestorePoint{committed_epochs_, committed_step_};
      job = active_job_;
    }
    log_->warn(
        "job {}: {}; placing the reducer shards again and restoring them from the "
        "checkpoint after epoch {} (step {})",
        job, why.ToString(), point.epochs, point.step);
    Status placed = AdmitJoiners(/*start=*/false);
    if (placed.ok()) placed = PlaceShards(point.epochs, point.step);
    if (placed.ok()) return point;
    why = placed;  // lost another worker meanwhile: try again, while attempts last
  }
}

void MasterService::Impl::RunJob(QueuedJob& queued) {
  ScopedLogJob log_job(queued.id);  // json log lines of the job thread name the job
  jobs::JobSpec spec;
  Result<TrainingResult> result = Train(queued, &spec);
  {
    Locked lock(this);
    for (WorkerId id : job_workers_) (void)SendToWorkerLocked(id, msg::EndJob{queued.id});
    JobRecord& record = records_[queued.id];
    record.state = result.ok() ? "succeeded" : cancelled_ ? "cancelled" : "failed";
    // A master that stops (or is stopped) mid-job leaves the job to the next one's --recover.
    if (journal_ && !stopping_) {
      QueueJournalLocked([id = queued.id](JobJournal& journal) { journal.RemoveJob(id); });
      PersistLocked();
    }
    if (!result.ok()) record.error = result.status().ToString();
    if (result.ok() && result->last) record.epochs_done = result->last->epoch;
    // Its submitter, told the outcome next, may then go: that cancels nothing.
    ForgetSubmitterLocked(queued.id);
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
  log_->info("job {} ({}) peak RSS: {}", queued.id, spec.name, PeakRssText(PeakRss()));
  if (result.ok()) {
    log_->info("job {} ({}) succeeded: {}", queued.id, spec.name,
               result->predicted ? DescribePredicted(*result->predicted) : result->model_path);
  } else {
    log_->error("job {} ({}) failed: {}", queued.id, spec.name, result.status().ToString());
  }
  if (queued.listener) {
    queued.listener->OnFinished(result.status(), result.ok() ? &*result : nullptr);
  }
  // A long-lived master would otherwise keep each job's freed heap (see malloc_tuning.h).
  ReturnFreedMemoryToSystem();
}

JobPeakRss MasterService::Impl::PeakRss() const {
  JobPeakRss peak;
  peak.master_bytes = PeakRssBytes();
  peak.workers_in_process = options_.workers_in_process;
  if (peak.workers_in_process) return peak;  // theirs is the master's
  MutexLock lock(&mu_);
  for (const auto& [id, worker] : worker_peaks_) peak.workers.push_back(worker);
  return peak;
}

Status MasterService::Impl::AdmitNewWorkers() {
  bool joiners = false;
  {
    Locked lock(this);
    for (const auto& [id, w] : workers_) {
      joiners = joiners ||
                (!refused_.count(id) &&
                 std::find(job_workers_.begin(), job_workers_.end(), id) == job_workers_.end());
    }
  }
  // Workers that registered since the last round join here and take over their share of the
  // partitions (a failure to set one up only leaves it out).
  return joiners ? AdmitJoiners(/*start=*/true) : Status::Ok();
}

void MasterService::Impl::MakeMapStep(const RoundRequest& request, Step* step) {
  uint64_t job;
  {
    Locked lock(this);
    job = active_job_;
  }
  step->kind = Step::Kind::kMap;
  step->epoch = request.epoch;
  step->round = request.round;
  step->what = "epoch " + std::to_string(request.epoch + 1) + " round " +
               std::to_string(request.round + 1) + ": map tasks";
  step->launch_task = [this, job, request](const WorkerEntry& w, int64_t t, int attempt) {
    mu_.AssertHeld();
    const shuffle::TreeNode node = shuffle::NodeOfTask(t, map_node_count_);
    return QueueLocked(w.connection,
                       msg::RunMapTask{job, request.epoch, request.round, node.lo, attempt,
                                       request.step, request.learning_rate, node.count});
  };
}

void MasterService::Impl::MakeReduceStep(const RoundRequest& request, int64_t examples,
                                         Step* step) {
  step->kind = Step::Kind::kReduce;
  step->epoch = request.epoch;
  step->round = request.round;
  step->update = request.step;
  step->what = "epoch " + std::to_string(request.epoch + 1) + " round " +
               std::to_string(request.round + 1) + ": reduce";
  uint64_t job;
  {
    Locked lock(this);
    job = active_job_;
    for (size_t s = 0; s < shard_hosts_.size(); ++s) {
      step->waiting[static_cast<int64_t>(s)] = shard_hosts_[s];
    }
  }
  step->launch_target = [this, job, request, examples](int64_t s) {
    mu_.AssertHeld();
    return SendToWorkerLocked(shard_hosts_[s],
                              msg::ReduceRound{job, request.epoch, request.round, s, request.step,
                                               request.learning_rate, examples});
  };
}

Result<api::MapStats> MasterService::Impl::MapRound(const RoundRequest& request) {
  MRTRAIN_RETURN_IF_ERROR(AdmitNewWorkers());
  Step step;
  MakeMapStep(request, &step);
  MRTRAIN_RETURN_IF_ERROR(RunTasks(msg::DataSet::kTrain, kMapTasks, step));
  int64_t node_count;
  {
    Locked lock(this);
    node_count = map_node_count_;
  }
  return SumInTreeOrder(step.stats, node_count);
}

Status MasterService::Impl::ReduceRound(const RoundRequest& request, int64_t examples) {
  Step step;
  MakeReduceStep(request, examples, &step);
  MRTRAIN_RETURN_IF_ERROR(RunStep(step));
  Locked lock(this);
  step_count_ = request.step;
  return Status::Ok();
}

Result<api::MapStats> MasterService::Impl::MapAndReduce(const RoundRequest& map_request,
                                                        const RoundRequest& reduce_request,
                                                        int64_t examples) {
  MRTRAIN_RETURN_IF_ERROR(AdmitNewWorkers());
  Step reduce, map;
  MakeReduceStep(reduce_request, examples, &reduce);
  MakeMapStep(map_request, &map);
  {
    Locked lock(this);
    PrepareTasksLocked(msg::DataSet::kTrain, kMapTasks, map);
  }
  MRTRAIN_RETURN_IF_ERROR(RunSteps({&reduce, &map}));
  int64_t node_count;
  {
    Locked lock(this);
    step_count_ = reduce_request.step;
    node_count = map_node_count_;
  }
  return SumInTreeOrder(map.stats, node_count);
}

Result<api::MapStats> MasterService::Impl::EvaluateSet(msg::DataSet set, int64_t step_count) {
  Step step;
  step.kind = Step::Kind::kEvaluate;
  step.round = step_count;  // EvalDone carries its task's step: older results do not match
  step.what = std::string("evaluating data.") + msg::DataSetName(set);
  uint64_t job;
  {
    Locked lock(this);
    job = active_job_;
  }
  step.launch_task = [this, job, set, step_count](const WorkerEntry& w, int64_t p, int attempt) {
    mu_.AssertHeld();
    return QueueLocked(w.connection, msg::EvaluateTask{job, set, p, attempt, step_count});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(set, static_cast<int>(set), step));
  return SumInTreeOrder(step.stats, 1);
}

Status MasterService::Impl::SaveShards(CheckpointManifest manifest, CheckpointDir& dir) {
  Step step;
  step.kind = Step::Kind::kSave;
  step.epoch = manifest.epochs_done;
  step.what = "checkpoint after epoch " + std::to_string(manifest.epochs_done);
  uint64_t job;
  int num_shards;
  {
    Locked lock(this);
    job = active_job_;
    num_shards = static_cast<int>(shard_hosts_.size());
    for (int s = 0; s < num_shards; ++s) step.waiting[s] = shard_hosts_[s];
  }
  step.saved.resize(num_shards);
  step.launch_target = [&, job](int64_t s) {
    mu_.AssertHeld();
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
  Locked lock(this);
  records_[active_job_].epochs_done = manifest.epochs_done;
  committed_epochs_ = manifest.epochs_done;
  committed_step_ = manifest.step;
  recoveries_ = 0;
  PersistLocked();
  for (WorkerId id : job_workers_) {
    (void)SendToWorkerLocked(
        id, msg::CheckpointCommitted{active_job_, manifest.epochs_done, manifest.step});
  }
  return Status::Ok();
}

}  // namespace mrtrain::runtime
