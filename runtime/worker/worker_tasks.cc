// The worker's jobs and tasks: setting a job up, building the model for a placement, loading
// partitions, map tasks (computed or replayed from kept output, then pushed) and evaluations,
// and the parameter pulls they share.
#include <unordered_map>

#include "engine/base/malloc_tuning.h"
#include "engine/base/peak_rss.h"
#include "engine/models/registry.h"
#include "runtime/predict/prediction_parts.h"
#include "runtime/worker/worker_impl.h"

namespace mrtrain::runtime {
namespace {

std::string DefaultSpillRoot() {
  std::error_code ec;
  std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  return (ec ? std::string("/tmp") : tmp.string()) + "/mrtrain-spill";
}

// What a fault test's `corrupt` does to an encoded PushRun: flips its last byte, which lies in
// the run's values (the last field) when it has any, past the frame's checksum (which the
// transport then computes over the bytes as they are), so the shard's values_crc32c catches it.
void CorruptPush(GatherPayload* payload) {
  std::string bytes = payload->Join();
  if (!bytes.empty()) bytes.back() ^= 0x5A;
  *payload = GatherPayload(std::move(bytes));
}

// The model's parameters from the shards' replies. Each tensor is built block by block in
// order, every float copied once: not zeroed first and then overwritten (a model-sized memset
// per pull). kCorruption unless the blocks are exactly the model's, each once, at its length.
Result<ModelState> AssembleParams(const ModelLayout& layout,
                                  const std::vector<msg::ParamsReply>& replies) {
  std::unordered_map<uint64_t, const float*> block_of;
  for (const msg::ParamsReply& reply : replies) {
    for (size_t i = 0; i < reply.keys.size(); ++i) {
      const ParamKey key = ParamKey::FromPacked(reply.keys[i]);
      const int64_t length = reply.offsets[i + 1] - reply.offsets[i];
      if (!layout.IsValid(key) || layout.Range(key).length != length) {
        return CorruptionError("a reducer shard sent block " + std::to_string(key.block()) +
                               " of tensor " + std::to_string(key.tensor()) +
                               ", which does not fit the model");
      }
      if (!block_of.emplace(key.packed(), reply.values.data() + reply.offsets[i]).second) {
        return CorruptionError("the reducer shards sent block " + std::to_string(key.block()) +
                               " of tensor " + std::to_string(key.tensor()) + " twice");
      }
    }
  }
  if (block_of.size() != layout.keys().size()) {
    return CorruptionError("the reducer shards sent " + std::to_string(block_of.size()) +
                           " blocks; the model has " + std::to_string(layout.keys().size()));
  }
  ModelState state;
  state.tensors.resize(layout.num_tensors());
  // A row-sparse tensor is never whole (its rows are pulled per task): nothing to reserve.
  for (int t = 0; t < layout.num_tensors(); ++t) {
    if (!layout.specs()[t].row_sparse) state.tensors[t].reserve(layout.specs()[t].size());
  }
  // The layout's keys run through each tensor's blocks in order (offset 0, then each after the
  // one before), so appending them fills every tensor exactly.
  for (ParamKey key : layout.keys()) {
    const BlockRange r = layout.Range(key);
    const float* block = block_of.at(key.packed());
    state.tensors[r.tensor].insert(state.tensors[r.tensor].end(), block, block + r.length);
  }
  return state;
}

}  // namespace

Status WorkerService::Impl::SetUpJob(const msg::JobSpecText& text, msg::JobReady* ready) {
  // The peak this worker reports with its map tasks is this job's, not its lifetime's (where
  // the kernel cannot reset it, it counts from the process's start).
  if (!ResetPeakRss()) log_->debug("cannot reset the peak RSS; reporting it since the start");
  // The last reference to a job (EndJob's, or a late task's) frees its partitions, kept output and
  // shards: give that memory back then, so a long-lived worker does not grow job after job.
  std::shared_ptr<WorkerJob> job(new WorkerJob, [](WorkerJob* ended) {
    std::error_code ec;  // empty by now: every task removes its own runs
    std::filesystem::remove(ended->map_spill_dir, ec);
    delete ended;
    ReturnFreedMemoryToSystem();
  });
  job->id = text.job_id;
  const std::string spill_stem =
      (options_.spill_dir.empty() ? DefaultSpillRoot() : options_.spill_dir) + "/job" +
      std::to_string(text.job_id) + "-" + std::to_string(getpid());
  job->kept = std::make_unique<MapOutputStore>(options_.keep_budget_bytes, spill_stem);
  job->map_spill_dir = spill_stem + "-map";
  MRTRAIN_ASSIGN_OR_RETURN(job->spec, UnpackJob(text, options_.plugin_cache_dir));
  MRTRAIN_ASSIGN_OR_RETURN(job->plugins, LoadPlugins(job->spec));
  const data::DatasetSpec* specs[3] = {&job->spec.train,
                                       job->spec.test ? &*job->spec.test : nullptr,
                                       job->spec.validation ? &*job->spec.validation : nullptr};
  int64_t counts[3] = {0, 0, 0};
  int disk_sets = 0;
  for (const data::DatasetSpec* s : specs) disk_sets += s && s->cache == data::CacheMode::kDisk;
  for (int i = 0; i < 3; ++i) {
    if (!specs[i]) continue;
    auto opened = data::Dataset::Open(*specs[i]);
    if (!opened.ok()) {
      return opened.status().WithContext(std::string("data.") +
                                         msg::DataSetName(static_cast<msg::DataSet>(i)));
    }
    job->datasets[i] = std::move(*opened);
    const int64_t budget = specs[i]->cache == data::CacheMode::kDisk
                               ? static_cast<int64_t>(options_.memory_budget_bytes / disk_sets)
                               : data::PartitionCache::kUnbounded;
    job->caches[i] = std::make_unique<data::PartitionCache>(job->datasets[i].get(), budget);
    counts[i] = job->datasets[i]->num_partitions();
  }
  *ready = msg::JobReady{text.job_id, msg::JobReady::kSpec, counts[0], counts[1], counts[2]};
  MutexLock lock(&mu_);
  jobs_[job->id] = std::move(job);
  return Status::Ok();
}

Status WorkerService::Impl::StartTraining(const msg::StartTraining& start) {
  std::shared_ptr<WorkerJob> job = FindJob(start.job_id);
  if (!job) return NotFoundError("job " + std::to_string(start.job_id) + " is not set up here");
  const jobs::JobSpec& spec = job->spec;
  auto parts = std::make_shared<TrainingParts>();
  api::DataShape shape;
  shape.num_features = start.num_features;
  shape.num_classes = start.num_classes;
  shape.is_sparse = start.is_sparse != 0;

  std::vector<std::unique_ptr<api::Mapper>> mappers;
  std::optional<ModelLayout> layout;
  for (int t = 0; t < options_.slots; ++t) {
    MRTRAIN_ASSIGN_OR_RETURN(auto mapper, MakeMapper(spec, job->plugins));
    MRTRAIN_ASSIGN_OR_RETURN(ModelLayout l, LayoutFor(*mapper, shape, spec));  // each learns it
    layout = std::move(l);
    mappers.push_back(std::move(mapper));
  }
  parts->layout = std::make_shared<const ModelLayout>(std::move(*layout));
  parts->mappers = std::make_unique<MapperPool>(std::move(mappers));
  parts->partitioner = shuffle::MakePartitioner(
      spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort ? shuffle::ShuffleMode::kSort
                                                             : shuffle::ShuffleMode::kHash,
      *parts->layout, spec.reducers);
  if (static_cast<int64_t>(start.shard_addresses.size()) != spec.reducers) {
    return InvalidArgumentError("the master placed " +
                                std::to_string(start.shard_addresses.size()) +
                                " reducer shards; the spec has " + std::to_string(spec.reducers));
  }
  parts->shard_addresses = start.shard_addresses;
  MapTaskConfig& config = parts->config;
  config.layout = parts->layout.get();
  config.num_features = shape.num_features;
  config.rounds_per_epoch = spec.rounds_per_epoch;
  config.chunk_rows = spec.chunk_rows;
  config.mapper_name = spec.model_plugin.empty() ? spec.model_type : spec.model_plugin;
  config.seed = spec.seed;
  config.buffer_bytes = spec.shuffle_buffer_bytes;
  config.spill_dir = job->map_spill_dir;
  config.model_averaging = spec.mode == jobs::JobSpec::Mode::kModelAveraging;
  config.local_learning_rate = spec.local_learning_rate;
  config.local_batch_size = spec.local_batch_size;
  parts->row_orders = std::make_unique<RowOrderCache>(spec.seed);

  if (!start.hosted_shards.empty()) {
    MRTRAIN_ASSIGN_OR_RETURN(auto probe, MakeRule(spec, job->plugins));
    parts->num_slots = probe->NumSlots();
    // Each shard starts from its own file of the checkpoint to resume from, or computes its
    // own blocks of the seeded initial parameters: no host ever holds the whole model.
    const CheckpointDir dir(spec.output_dir + "/checkpoints", spec.checkpoint_keep);
    const int64_t num_partitions = job->datasets[0]->num_partitions();
    for (int64_t s : start.hosted_shards) {
      if (s < 0 || s >= spec.reducers) {
        return InvalidArgumentError("no reducer shard " + std::to_string(s));
      }
      MRTRAIN_ASSIGN_OR_RETURN(auto rule, MakeRule(spec, job->plugins));
      auto shard = std::make_unique<ReducerShard>(
          static_cast<int>(s), parts->layout,
          shuffle::KeysOfShard(*parts->partitioner, *parts->layout, static_cast<int>(s)),
          std::move(rule), static_cast<float>(spec.l1), static_cast<float>(spec.l2),
          RowInit{spec.init, static_cast<float>(spec.init_scale), spec.seed}, parts->partitioner);
      if (start.resume_epochs > 0) {
        MRTRAIN_ASSIGN_OR_RETURN(const ShardFile file,
                                 dir.LoadShard(start.resume_epochs, static_cast<int>(s),
                                               *parts->layout, *parts->partitioner));
        MRTRAIN_RETURN_IF_ERROR(shard->Restore(file));
      } else {
        shard->Initialize();
      }
      auto hosted = std::make_unique<HostedShard>();
      for (ParamKey key : shard->keys()) {
        hosted->param_bytes += sizeof(float) * parts->layout->Range(key).length;
      }
      hosted->host =
          std::make_unique<ShardHost>(std::move(shard), num_partitions, start.step, spec.staleness);
      parts->shards[s] = std::move(hosted);
    }
  }
  // Connect to every shard host now, so the first round does not pay for it. Only a head
  // start: a host that cannot be reached now is the master's to notice (its tasks will say so).
  for (const std::string& address : parts->shard_addresses) {
    Status reached = Peer(address).status();
    if (!reached.ok()) log_->warn("cannot reach a reducer shard host yet: {}", reached.ToString());
  }
  // A restart (the master rolled back after losing a shard host) replaces the shards and the
  // placement; tasks of before report nothing from now on, and their pushes still waiting for
  // acknowledgements are given up quietly.
  size_t released = 0;
  {
    MutexLock report_lock(&job->report_mu);
    // Two StartTrainings may be built at once on the pool; the older placement must not
    // replace the newer one when it finishes last (the master ignores its answer anyway).
    if (start.placement < job->placement) return Status::Ok();
    job->placement = start.placement;
    ++job->generation;
    MutexLock lock(&job->mu);
    job->training = std::move(parts);
    job->params.clear();  // pulled from the shards of before
  }
  {
    MutexLock lock(&mu_);
    for (auto it = acks_.begin(); it != acks_.end();) {
      if (std::get<0>(it->first) != job->id) {
        ++it;
        continue;
      }
      std::shared_ptr<PendingPushes> pending = it->second;
      it = acks_.erase(it);
      if (pending->finished) continue;
      pending->finished = true;
      pending->timeout.Cancel();
      released += pending->TakeAll();
    }
  }
  unacked_.Release(released);
  return Status::Ok();
}

Status WorkerService::Impl::LoadPartition(const msg::LoadPartition& task,
                                          msg::PartitionLoaded* loaded) {
  std::shared_ptr<WorkerJob> job = FindJob(task.job_id);
  if (!job) return NotFoundError("job " + std::to_string(task.job_id) + " is not set up here");
  MRTRAIN_ASSIGN_OR_RETURN(auto partition, job->Partition(task.set, task.partition));
  const PartitionSummary s = Summarize(*partition);
  loaded->job_id = task.job_id;
  loaded->set = task.set;
  loaded->partition = task.partition;
  loaded->attempt = task.attempt;
  loaded->rows = s.rows;
  loaded->num_cols = s.num_cols;
  loaded->is_sparse = s.is_sparse;
  loaded->labels_integral = s.labels_integral;
  loaded->max_label = s.max_label;
  loaded->skipped_records = s.skipped_records;
  loaded->skipped_samples = s.skipped_samples;
  if (loaded->skipped_samples.size() > kMaxSkippedSamples) {
    loaded->skipped_samples.resize(kMaxSkippedSamples);
  }
  return Status::Ok();
}

Result<Params> WorkerService::Impl::Pull(WorkerJob& job, const TrainingParts& parts,
                                         int64_t updates) {
  const int64_t num_shards = static_cast<int64_t>(parts.shard_addresses.size());
  std::vector<std::future<Result<msg::ParamsReply>>> replies;
  // Requests this pull still waits for are forgotten however it ends (an error, a timeout),
  // so a reply that never comes leaves nothing behind.
  struct Outstanding {
    Impl* self;
    std::vector<uint64_t> ids;
    ~Outstanding() {
      MutexLock lock(&self->mu_);
      for (uint64_t id : ids) self->pulls_.erase(id);
    }
  } outstanding{this, {}};
  // Shards hosted here are read in place (PullOwnShard), after the other hosts were asked, so
  // their replies travel meanwhile.
  std::vector<bool> own(num_shards);
  for (int64_t s = 0; s < num_shards; ++s) {
    own[s] = parts.shards.count(s) > 0;
    if (own[s]) {
      replies.emplace_back();
      continue;
    }
    MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Connection> peer, Peer(parts.shard_addresses[s]));
    msg::PullParams pull;
    pull.job_id = job.id;
    pull.shard = s;
    pull.step = updates + 1;
    {
      MutexLock lock(&mu_);
      if (finished_) return UnavailableError("the worker is stopping");
      pull.request_id = next_request_++;
      PendingPull& pending = pulls_[pull.request_id];
      pending.via = peer.get();
      replies.push_back(pending.reply.get_future());
      outstanding.ids.push_back(pull.request_id);
    }
    MRTRAIN_RETURN_IF_ERROR(SendMessage(*peer, pull));
  }
  std::vector<msg::ParamsReply> shard_replies;
  for (int64_t s = 0; s < num_shards; ++s) {
    const std::string what =
        "parameters from reducer shard " + std::to_string(s) + " at " + parts.shard_addresses[s];
    MRTRAIN_ASSIGN_OR_RETURN(msg::ParamsReply reply,
                             own[s] ? PullOwnShard(job.id, s, updates)
                                    : Await(replies[s], options_.reply_timeout, what));
    if (!reply.error.empty()) return UnavailableError(what + ": " + reply.error);
    if (reply.step != updates) {
      return FailedPreconditionError(what + ": the shard holds step " + std::to_string(reply.step) +
                                     ", wanted " + std::to_string(updates));
    }
    shard_replies.push_back(std::move(reply));
  }
  MRTRAIN_ASSIGN_OR_RETURN(ModelState assembled, AssembleParams(*parts.layout, shard_replies));
  auto state = std::make_shared<ModelState>(std::move(assembled));
  state->layout = parts.layout;
  state->step = updates;
  return Params(std::move(state));
}

Status WorkerService::Impl::PullRows(WorkerJob& job, const TrainingParts& parts, int64_t updates,
                                     const std::vector<ParamKey>& keys, PulledRows* out) {
  const int64_t num_shards = static_cast<int64_t>(parts.shard_addresses.size());
  std::vector<std::vector<uint64_t>> by_shard(num_shards);
  size_t floats = 0;
  for (ParamKey key : keys) {
    by_shard[parts.partitioner->ShardOf(key)].push_back(key.packed());
    floats += static_cast<size_t>(parts.layout->Range(key).length);
  }
  out->Reserve(keys.size(), floats);
  struct Request {
    int64_t shard;
    std::vector<uint64_t> keys;
    std::future<Result<msg::ParamsReply>> reply;
  };
  std::vector<Request> requests;
  struct Outstanding {  // as in Pull: forgotten however this ends
    Impl* self;
    std::vector<uint64_t> ids;
    ~Outstanding() {
      MutexLock lock(&self->mu_);
      for (uint64_t id : ids) self->pulls_.erase(id);
    }
  } outstanding{this, {}};
  for (int64_t s = 0; s < num_shards; ++s) {
    for (size_t begin = 0; begin < by_shard[s].size(); begin += worker_internal::kRowsPerPull) {
      const size_t end = std::min(by_shard[s].size(), begin + worker_internal::kRowsPerPull);
      MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Connection> peer, Peer(parts.shard_addresses[s]));
      msg::PullParams pull;
      pull.job_id = job.id;
      pull.shard = s;
      pull.step = updates + 1;
      pull.keys.assign(by_shard[s].begin() + begin, by_shard[s].begin() + end);
      Request request{s, pull.keys, {}};
      {
        MutexLock lock(&mu_);
        if (finished_) return UnavailableError("the worker is stopping");
        pull.request_id = next_request_++;
        PendingPull& pending = pulls_[pull.request_id];
        pending.via = peer.get();
        request.reply = pending.reply.get_future();
        outstanding.ids.push_back(pull.request_id);
      }
      MRTRAIN_RETURN_IF_ERROR(SendMessage(*peer, pull));
      requests.push_back(std::move(request));
    }
  }
  for (Request& request : requests) {
    const std::string what = "rows from reducer shard " + std::to_string(request.shard) + " at " +
                             parts.shard_addresses[request.shard];
    MRTRAIN_ASSIGN_OR_RETURN(msg::ParamsReply reply,
                             Await(request.reply, options_.reply_timeout, what));
    if (!reply.error.empty()) return UnavailableError(what + ": " + reply.error);
    if (reply.step != updates) {
      return FailedPreconditionError(what + ": the shard holds step " + std::to_string(reply.step) +
                                     ", wanted " + std::to_string(updates));
    }
    if (reply.keys != request.keys) {
      return CorruptionError(what + ": the reply's keys are not the rows asked for");
    }
    for (size_t i = 0; i < reply.keys.size(); ++i) {
      const ParamKey key = ParamKey::FromPacked(reply.keys[i]);
      const int64_t length = reply.offsets[i + 1] - reply.offsets[i];
      if (parts.layout->Range(key).length != length) {
        return CorruptionError(what + ": " + parts.layout->DescribeKey(key) + " came with " +
                               std::to_string(length) + " floats");
      }
      out->Add(key, reply.values.data() + reply.offsets[i], length);
    }
  }
  return Status::Ok();
}

RowFetcher WorkerService::Impl::RowsAfter(WorkerJob& job, const TrainingParts& parts,
                                          int64_t updates) {
  return [this, &job, &parts, updates](const std::vector<ParamKey>& keys, PulledRows* out) {
    return PullRows(job, parts, updates, keys, out);
  };
}

Result<Params> WorkerService::Impl::ParamsAfter(WorkerJob& job, const TrainingParts& parts,
                                                int64_t updates) {
  std::promise<Result<Params>> promise;
  std::shared_future<Result<Params>> future;
  bool mine = false;
  {
    MutexLock lock(&job.mu);
    auto it = job.params.find(updates);
    if (it != job.params.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      job.params[updates] = future;
      mine = true;
      // Only the newest steps are still asked for: with staleness s a round's map tasks read up
      // to s updates back, and a straggler may want the step before theirs.
      while (static_cast<int64_t>(job.params.size()) > job.spec.staleness + 2) {
        job.params.erase(job.params.begin());
      }
    }
  }
  if (mine) {
    Result<Params> pulled = Pull(job, parts, updates);
    if (!pulled.ok()) {  // let the next attempt pull again
      MutexLock lock(&job.mu);
      job.params.erase(updates);
    }
    promise.set_value(std::move(pulled));
  }
  if (future.wait_for(options_.reply_timeout) != std::future_status::ready) {
    return DeadlineExceededError("no parameters for step " + std::to_string(updates));
  }
  return future.get();
}

void WorkerService::Impl::RunSpread(int64_t n, const std::function<void(int64_t)>& fn) {
  // The calling thread works too and then waits only for items other threads have claimed (and
  // so are running): helpers still queued behind other tasks find nothing left and return, so
  // tasks that spread their items over one pool never wait for each other.
  struct Shared {
    std::atomic<int64_t> next{0};
    std::mutex mu;
    std::condition_variable cv;
    int64_t finished = 0;  // guarded by mu
  };
  auto shared = std::make_shared<Shared>();
  auto work = [shared, n, &fn] {
    for (int64_t i; (i = shared->next++) < n;) {
      fn(i);  // alive: the caller waits for every claimed item
      std::lock_guard<std::mutex> lock(shared->mu);
      if (++shared->finished == n) shared->cv.notify_all();
    }
  };
  const int64_t helpers = std::min<int64_t>(n - 1, options_.slots - 1);
  for (int64_t h = 0; h < helpers; ++h) Spawn(compute_, [work] { work(); });
  work();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->finished == n; });
}

Result<MapTaskOutput> WorkerService::Impl::MapPartition(WorkerJob& job, const TrainingParts& parts,
                                                        const msg::RunMapTask& task,
                                                        int64_t partition,
                                                        const ModelState& params) {
  MRTRAIN_ASSIGN_OR_RETURN(auto data, job.Partition(msg::DataSet::kTrain, partition,
                                                    /*read_ahead=*/true));
  const TaskId id{task.epoch, task.round, partition, task.attempt};
  // A combiner serves one partition at a time, so each makes its own (cheap: a constructor).
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<api::Combiner> combiner,
                           MakeCombiner(job.spec, job.plugins));
  auto mapper = parts.mappers->Borrow();
  const RowFetcher rows = RowsAfter(job, parts, params.step);
  return RunMapTask(parts.config, id, *data, params.View(), *mapper, *parts.partitioner,
                    *parts.row_orders, combiner.get(), &rows);
}

Result<std::vector<GatherPayload>> WorkerService::Impl::MapOutputFor(WorkerJob& job,
                                                                     const TrainingParts& parts,
                                                                     const msg::RunMapTask& task,
                                                                     api::MapStats* stats,
                                                                     bool* replayed) {
  const int64_t num_shards = static_cast<int64_t>(parts.shard_addresses.size());
  // A replay after a restart: the pushes this worker kept, with this attempt's number.
  Result<std::optional<KeptOutput>> kept = job.kept->Find(task.step, task.partition);
  if (!kept.ok()) log_->warn("computing the task again: {}", kept.status().ToString());
  if (kept.ok() && *kept && static_cast<int64_t>((*kept)->pushes.size()) == num_shards) {
    std::vector<GatherPayload> payloads;
    for (GatherPayload& bytes : (*kept)->pushes) {
      auto push = std::make_shared<msg::PushRun>();
      MRTRAIN_RETURN_IF_ERROR(msg::Decode(bytes.Join(), push.get()));
      bytes = GatherPayload();
      push->attempt = task.attempt;
      MRTRAIN_ASSIGN_OR_RETURN(GatherPayload payload, msg::EncodeGather(std::move(push)));
      payloads.push_back(std::move(payload));
    }
    *stats = (*kept)->stats;
    ++replayed_tasks_;
    *replayed = true;
    return payloads;
  }

  const int64_t num_partitions = job.datasets[0]->num_partitions();
  const shuffle::TreeNode node{task.partition, task.partition_count};
  if (!shuffle::IsNodeOf(node, num_partitions)) {
    return InvalidArgumentError("map task for partitions [" + std::to_string(node.lo) + ", +" +
                                std::to_string(node.count) +
                                "): not a node of the reduction tree over the job's " +
                                std::to_string(num_partitions) + " partitions");
  }
  // The version comes from the spec, not the message (JobSpec::MapReadsAfter): the master works
  // it out from the same spec, and RunMapTask stays as it was.
  MRTRAIN_ASSIGN_OR_RETURN(Params params,
                           ParamsAfter(job, parts, job.spec.MapReadsAfter(task.step, task.round)));
  // Each partition of the node computed exactly as a task of its own, spread over the slots;
  // then summed per key in tree order into one run per shard, pushed once.
  const int64_t first = node.lo;
  std::vector<std::optional<Result<MapTaskOutput>>> computed(node.End(num_partitions) - first);
  RunSpread(static_cast<int64_t>(computed.size()),
            [&](int64_t i) { computed[i] = MapPartition(job, parts, task, first + i, *params); });
  std::vector<MapTaskOutput> outputs;
  for (std::optional<Result<MapTaskOutput>>& c : computed) {
    if (!c->ok()) return c->status();
    outputs.push_back(std::move(**c));
  }
  computed.clear();
  MapTaskOutput output = CombineNodeOutputs(
      std::move(outputs), first, job.spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort);
  if (output.spilled_runs > 0) {
    // The job's first spill is news (the output is read back from disk every step: more
    // shuffle.buffer_bytes would avoid it); the rest are counted and summed up at the job's end.
    const bool news = job.spilled_tasks.fetch_add(1) == 0;
    log_->log(news ? spdlog::level::info : spdlog::level::debug,
              "job {}: the map task of epoch {} round {} over partitions [{}, {}) spilled {} runs "
              "({} bytes) past shuffle.buffer_bytes={}",
              job.id, task.epoch, task.round, first, node.End(num_partitions), output.spilled_runs,
              output.spilled_bytes, parts.config.buffer_bytes);
    job.spilled_runs += output.spilled_runs;
    job.spilled_bytes += output.spilled_bytes;
  }
  // One run to every shard, empty ones too: a shard reduces once its runs cover every partition.
  // The runs' floats are sent from where the combining left them (EncodeGather), and this is
  // the only pass that checksums them on this side: the frame's checksum is combined from it.
  std::vector<GatherPayload> payloads;
  for (int64_t s = 0; s < num_shards; ++s) {
    auto push = std::make_shared<msg::PushRun>();
    push->job_id = task.job_id;
    push->epoch = task.epoch;
    push->round = task.round;
    push->step = task.step;
    push->partition = task.partition;
    push->partition_count = task.partition_count;
    push->shard = s;
    push->attempt = task.attempt;
    push->values_crc32c =
        Crc32c(output.runs[s].values.data(), output.runs[s].values.size() * sizeof(float));
    msg::SetRun(std::move(output.runs[s]), push.get());
    output.runs[s] = shuffle::Run();
    Result<GatherPayload> payload = msg::EncodeGather(std::move(push));
    if (!payload.ok()) {
      // A run travels in one message; more reducer shards cut the model into smaller runs.
      return payload.status().WithContext(
          "the run of partitions [" + std::to_string(first) + ", " +
          std::to_string(node.End(num_partitions)) + ") for reducer shard " + std::to_string(s) +
          " does not fit one message (raise shuffle.reducers to split " +
          "the model over more shards)");
    }
    payloads.push_back(std::move(*payload));
  }
  *stats = output.stats;
  // Kept until the epoch's checkpoint commits, for a replay if a shard host is lost before.
  if (options_.keep_map_output) {
    job.kept->Keep(task.step, task.partition, KeptOutput{output.stats, payloads});
  }
  return payloads;
}

Status WorkerService::Impl::RunMap(const msg::RunMapTask& task, uint64_t generation,
                                   int64_t* unreachable_shard) {
  std::shared_ptr<WorkerJob> job = FindJob(task.job_id);
  if (!job) return NotFoundError("job " + std::to_string(task.job_id) + " is not set up here");
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<TrainingParts> parts, job->Training());
  api::MapStats stats;
  bool replayed = false;
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<GatherPayload> payloads,
                           MapOutputFor(*job, *parts, task, &stats, &replayed));
  if (!replayed) {
    switch (failpoint::Hit("map-after-compute", At(task))) {
      case failpoint::Action::kDrop:
        return Status::Ok();  // the task goes silent: a backup attempt or the bound must notice
      case failpoint::Action::kCorrupt:
        if (!payloads.empty()) CorruptPush(&payloads[0]);
        break;
      default:
        break;
    }
  }
  const int64_t num_shards = static_cast<int64_t>(parts->shard_addresses.size());
  auto pending = std::make_shared<PendingPushes>();
  pending->job = job;
  pending->generation = generation;
  pending->done = msg::MapTaskDone{task.job_id,    task.epoch,    task.round,
                                   task.partition, task.attempt,  stats.loss_sum,
                                   stats.examples, stats.correct, 0};
  pending->done.partition_count = task.partition_count;
  for (int64_t s = 0; s < num_shards; ++s) {
    pending->keys.push_back(AckKey{task.job_id, task.step, task.partition, s, task.attempt});
  }
  pending->remaining = num_shards;
  pending->held.assign(num_shards, 0);
  {
    // Registered before the first send: an acknowledgement may come back at once.
    MutexLock lock(&mu_);
    if (finished_) return UnavailableError("the worker is stopping");
    for (const AckKey& key : pending->keys) acks_[key] = pending;
  }
  int64_t bytes_sent = 0;
  for (const GatherPayload& p : payloads) bytes_sent += static_cast<int64_t>(p.size());
  {
    // Before the first send: only the last acknowledgement completes the task and reads it,
    // under the same lock.
    MutexLock lock(&mu_);
    pending->done.bytes_sent = bytes_sent;
  }
  for (int64_t s = 0; s < num_shards; ++s) {
    // Bounded memory: the worker's unacknowledged pushes stay within push_budget_bytes, so a
    // slow reducer (acknowledging late) makes its mappers wait here instead of piling runs up
    // in its queue. The connection's own send budget bounds what waits to be written.
    const size_t bytes = payloads[s].size();
    Status reserved = unacked_.Acquire(bytes, /*may_wait=*/true, parts->shard_addresses[s]);
    if (!reserved.ok()) {
      return GiveUpPushes(*pending,
                          reserved.WithContext("push to reducer shard " + std::to_string(s)));
    }
    {
      MutexLock lock(&mu_);
      if (pending->finished) {  // an earlier shard refused the run meanwhile
        unacked_.Release(bytes);
        return Status::Ok();
      }
      pending->held[s] = bytes;
    }
    failpoint::Coordinates at = At(task);
    at.shard = s;
    const failpoint::Action fault = failpoint::Hit("shuffle-mid-send", at);
    if (fault == failpoint::Action::kDrop) continue;  // lost on the way: no acknowledgement
    if (fault == failpoint::Action::kCorrupt) CorruptPush(&payloads[s]);
    if (parts->shards.count(s) > 0) {  // hosted here: stored and acknowledged in place
      PushToOwnShard(std::move(payloads[s]));
      payloads[s] = GatherPayload();
      continue;
    }
    auto peer = Peer(parts->shard_addresses[s]);
    Status sent = peer.ok() ? (*peer)->SendGather(MessageType::kPushRun, std::move(payloads[s]))
                            : peer.status();
    payloads[s] = GatherPayload();
    if (!sent.ok()) {
      if (sent.code() == StatusCode::kUnavailable) *unreachable_shard = s;
      return GiveUpPushes(*pending, sent.WithContext("push to reducer shard " + std::to_string(s) +
                                                     " at " + parts->shard_addresses[s]));
    }
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  std::weak_ptr<WorkerJob> weak_job = job;
  // The timer holds the pushes weakly: they hold the timer, and a transport stopped with pushes
  // in flight never fires it, so a strong hold would keep both alive for good.
  std::weak_ptr<PendingPushes> weak_pending = pending;
  TimerHandle timer = transport_->RunAfter(
      options_.reply_timeout, [weak, weak_job, weak_pending, task, generation] {
        auto self = weak.lock();
        auto pending = weak_pending.lock();
        if (!self || !pending) return;
        msg::TaskFailed failed = MapFailureOf(task);
        {
          MutexLock lock(&self->mu_);
          for (size_t s = 0; s < pending->held.size() && failed.shard < 0; ++s) {
            if (pending->held[s] > 0)
              failed.shard = static_cast<int64_t>(s);  // the first silent one
          }
        }
        Status timed_out = self->GiveUpPushes(
            *pending, UnavailableError("no acknowledgement of the push from reducer shard " +
                                       std::to_string(failed.shard) + " within the reply timeout"));
        if (timed_out.ok()) return;
        self->ReportFailure(failed, timed_out, weak_job.lock().get(), generation);
      });
  MutexLock lock(&mu_);
  pending->timeout = timer;
  if (pending->finished) timer.Cancel();
  return Status::Ok();
}

Status WorkerService::Impl::GiveUpPushes(PendingPushes& pending, const Status& why) {
  size_t released;
  {
    MutexLock lock(&mu_);
    if (pending.finished) return Status::Ok();
    pending.finished = true;
    for (const AckKey& key : pending.keys) acks_.erase(key);
    released = pending.TakeAll();
  }
  unacked_.Release(released);
  return why;
}

Status WorkerService::Impl::Evaluate(const msg::EvaluateTask& task, msg::EvalDone* done) {
  std::shared_ptr<WorkerJob> job = FindJob(task.job_id);
  if (!job) return NotFoundError("job " + std::to_string(task.job_id) + " is not set up here");
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<TrainingParts> parts, job->Training());
  MRTRAIN_ASSIGN_OR_RETURN(auto partition,
                           job->Partition(task.set, task.partition, /*read_ahead=*/true));
  MRTRAIN_ASSIGN_OR_RETURN(Params params, ParamsAfter(*job, *parts, task.step));
  auto mapper = parts->mappers->Borrow();
  const RowFetcher rows = RowsAfter(*job, *parts, task.step);
  MRTRAIN_ASSIGN_OR_RETURN(api::MapStats stats,
                           EvaluatePartition(*partition, parts->config.num_features, 1024,
                                             params->View(), *mapper, parts->layout.get(), &rows));
  *done = msg::EvalDone{task.job_id, task.set,       task.partition, task.attempt,
                        task.step,   stats.loss_sum, stats.examples, stats.correct};
  return Status::Ok();
}

Status WorkerService::Impl::Predict(const msg::PredictTask& task, msg::PredictDone* done) {
  std::shared_ptr<WorkerJob> job = FindJob(task.job_id);
  if (!job) return NotFoundError("job " + std::to_string(task.job_id) + " is not set up here");
  if (job->spec.predict_model.empty()) {
    return InvalidArgumentError("job " + std::to_string(task.job_id) + " is not a predict job");
  }
  std::shared_ptr<PredictModel> model;
  {
    // Read once per job; the job's other tasks wait for it (they need it too).
    MutexLock lock(&job->mu);
    if (!job->predict_model) {
      MRTRAIN_ASSIGN_OR_RETURN(
          std::unique_ptr<PredictModel> loaded,
          LoadPredictModel(job->spec.predict_model, job->plugins, std::max(1, options_.slots)));
      job->predict_model = std::move(loaded);
    }
    model = job->predict_model;
  }
  MRTRAIN_ASSIGN_OR_RETURN(auto partition, job->Partition(msg::DataSet::kTrain, task.partition,
                                                          /*read_ahead=*/true));
  PartPredictions part;
  MRTRAIN_RETURN_IF_ERROR(ScorePartition(*model, task.partition, *partition, &part));
  MRTRAIN_ASSIGN_OR_RETURN(PredictionPart written,
                           WritePredictionPart(job->spec.output_dir, task.partition, task.first_row,
                                               model->outputs, part));
  failpoint::Coordinates at;
  at.worker = name_;
  at.partition = task.partition;
  at.attempt = task.attempt;
  if (failpoint::Hit("predict-after-write", at) == failpoint::Action::kDrop) return Status::Ok();
  const Checkpoint& ckpt = model->checkpoint;
  *done = msg::PredictDone{
      task.job_id,
      task.partition,
      task.attempt,
      written.rows,
      written.bytes,
      written.crc32c,
      written.correct,
      written.squared_error,
      written.skipped,
      model->outputs,
      static_cast<uint8_t>(models::ReportsAccuracy(ckpt.model_type, ckpt.data_shape, part.correct)),
      model->file_bytes,
      model->file_crc32c};
  return Status::Ok();
}

}  // namespace mrtrain::runtime
