#include "runtime/worker/worker_service.h"

#include "engine/base/peak_rss.h"
#include "runtime/worker/worker_impl.h"

namespace mrtrain::runtime {

Status WorkerService::Impl::Start() {
  blas::SetBlasThreads(1);  // tasks run in parallel on the pool; results must not depend on cores
  MRTRAIN_ASSIGN_OR_RETURN(data_address_, transport_->Listen(options_.data_address, DataHandler()));
  const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  const Status stopped =
      UnavailableError("stopped before registering with the master at " + options_.master_address);
  Status last = UnavailableError("not tried");
  while (true) {
    // Shared with the callback, which may run after a Stop() has made this return.
    auto connected = std::make_shared<std::promise<Result<std::shared_ptr<Connection>>>>();
    auto future = connected->get_future();
    transport_->Connect(
        options_.master_address, ControlHandler(),
        [connected](Result<std::shared_ptr<Connection>> c) { connected->set_value(std::move(c)); });
    // Connect is itself bounded, but by seconds: Stop() (a signal) must not wait for it.
    while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (Wait(std::chrono::milliseconds(0))) return stopped;
    }
    Result<std::shared_ptr<Connection>> c = future.get();
    if (c.ok()) {
      MutexLock lock(&mu_);
      if (finished_) {
        (*c)->Close();
        return stopped;
      }
      control_ = *c;
      break;
    }
    last = c.status();
    // A wrong secret or version will not get better by retrying.
    if (last.code() == StatusCode::kFailedPrecondition ||
        std::chrono::steady_clock::now() >= deadline) {
      return last.WithContext("cannot reach the master at " + options_.master_address);
    }
    // The pause between tries ends early when Stop() is called.
    if (Wait(std::chrono::milliseconds(200))) return stopped;
  }
  msg::Hello hello;
  hello.worker_name = name_;
  hello.slots = static_cast<uint32_t>(options_.slots);
  hello.data_address = data_address_;
  std::shared_ptr<Connection> control;
  {
    MutexLock lock(&mu_);
    control = control_;
  }
  MRTRAIN_RETURN_IF_ERROR(SendMessage(*control, hello));
  auto welcome = registered_.get_future();
  if (welcome.wait_for(options_.connect_timeout) != std::future_status::ready) {
    return DeadlineExceededError("the master at " + options_.master_address +
                                 " did not answer the registration");
  }
  MRTRAIN_RETURN_IF_ERROR(welcome.get());
  log_->info("worker {} registered with {}; data plane at {}, {} task slots", hello.worker_name,
             options_.master_address, data_address_, options_.slots);
  return Status::Ok();
}

void WorkerService::Impl::Finish(const Status& status) {
  std::vector<std::promise<Result<msg::ParamsReply>>> pulls;
  {
    MutexLock lock(&mu_);
    if (!registered_set_) {
      registered_set_ = true;
      registered_.set_value(status.ok() ? UnavailableError("closed before registering") : status);
    }
    if (finished_) return;
    finished_ = true;
    for (auto& [id, p] : pulls_) pulls.push_back(std::move(p.reply));
    pulls_.clear();
    acks_.clear();
  }
  unacked_.Close();
  const Status failed = UnavailableError("the worker is stopping");
  for (auto& p : pulls) p.set_value(failed);
  finished_promise_.set_value(status);
}

void WorkerService::Impl::Stop(const Status& why) {
  Finish(why);
  std::shared_ptr<Connection> control;
  std::map<std::string, std::shared_ptr<Connection>> peers;
  {
    MutexLock lock(&mu_);
    control = std::move(control_);
    peers.swap(peers_);
  }
  if (control) control->Close();
  for (auto& [address, c] : peers) c->Close();
  compute_.join();
  shard_pool_.join();
  MutexLock lock(&mu_);
  jobs_.clear();
}

ConnectionHandler WorkerService::Impl::ControlHandler() {
  std::weak_ptr<Impl> weak = shared_from_this();
  ConnectionHandler h;
  h.on_message = [weak](const std::shared_ptr<Connection>& c, MessageType type,
                        std::string payload) {
    if (auto self = weak.lock()) {
      self->OnControl(type, std::move(payload));
    } else {
      c->Close();
    }
  };
  h.on_closed = [weak](const std::shared_ptr<Connection>&, const Status& status) {
    if (auto self = weak.lock()) {
      self->Finish(UnavailableError("lost the connection to the master: " + status.ToString()));
    }
  };
  return h;
}

ConnectionHandler WorkerService::Impl::DataHandler() {
  std::weak_ptr<Impl> weak = shared_from_this();
  ConnectionHandler h;
  h.on_message = [weak](const std::shared_ptr<Connection>& c, MessageType type,
                        std::string payload) {
    if (auto self = weak.lock()) {
      self->OnData(c, type, std::move(payload));
    } else {
      c->Close();
    }
  };
  h.takes_messages = true;  // pushes from this process's own map tasks (local mode)
  return h;
}

ConnectionHandler WorkerService::Impl::PeerHandler() {
  std::weak_ptr<Impl> weak = shared_from_this();
  ConnectionHandler h;
  h.on_message = [weak](const std::shared_ptr<Connection>& c, MessageType type,
                        std::string payload) {
    if (auto self = weak.lock()) self->OnPeer(type, std::move(payload));
  };
  h.on_closed = [weak](const std::shared_ptr<Connection>& c, const Status& status) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<std::promise<Result<msg::ParamsReply>>> orphaned;
    {
      MutexLock lock(&self->mu_);
      for (auto it = self->peers_.begin(); it != self->peers_.end(); ++it) {
        if (it->second == c) {
          self->peers_.erase(it);
          break;
        }
      }
      for (auto it = self->pulls_.begin(); it != self->pulls_.end();) {
        if (it->second.via != c.get()) {
          ++it;
          continue;
        }
        orphaned.push_back(std::move(it->second.reply));
        it = self->pulls_.erase(it);
      }
    }
    // No reply will come: the pulling tasks fail now (and are tried again), not in
    // reply_timeout with their compute slot held.
    for (auto& p : orphaned) {
      p.set_value(UnavailableError("lost the connection to the reducer shard host " + c->peer() +
                                   ": " + status.ToString()));
    }
  };
  return h;
}

Result<std::shared_ptr<Connection>> WorkerService::Impl::Peer(const std::string& address) {
  {
    MutexLock lock(&mu_);
    if (finished_) return UnavailableError("the worker is stopping");
    auto it = peers_.find(address);
    if (it != peers_.end()) return it->second;
  }
  auto connected = std::make_shared<std::promise<Result<std::shared_ptr<Connection>>>>();
  auto future = connected->get_future();
  transport_->Connect(address, PeerHandler(), [connected](Result<std::shared_ptr<Connection>> c) {
    connected->set_value(std::move(c));
  });
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Connection> c,
                           Await(future, options_.reply_timeout, "connection to " + address));
  MutexLock lock(&mu_);
  auto [it, inserted] = peers_.emplace(address, c);
  if (!inserted) c->Close();  // another thread connected first; use its connection
  return it->second;
}

std::shared_ptr<WorkerJob> WorkerService::Impl::FindJob(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void WorkerService::Impl::SendHeartbeats(uint32_t worker_id, std::chrono::milliseconds interval,
                                         uint64_t sequence) {
  {
    MutexLock lock(&mu_);
    if (finished_) return;
  }
  ToMaster(msg::Heartbeat{worker_id, sequence, 0});
  std::weak_ptr<Impl> weak = shared_from_this();
  transport_->RunAfter(interval, [weak, worker_id, interval, sequence] {
    if (auto self = weak.lock()) self->SendHeartbeats(worker_id, interval, sequence + 1);
  });
}

void WorkerService::Impl::ReportFailure(msg::TaskFailed failed, const Status& cause, WorkerJob* job,
                                        uint64_t generation) {
  // A task of a job that is not (or no longer) set up here failed for that reason alone: the
  // job ended (a failed job leaves tasks queued behind its EndJob) and the master, which has
  // moved on, would drop the report.
  if (failed.kind != msg::TaskKind::kSetup && !FindJob(failed.job_id)) {
    log_->debug("dropping a task of job {}, which is not running here: {}", failed.job_id,
                cause.ToString());
    return;
  }
  failed.code = cause.code() == StatusCode::kOk ? StatusCode::kInternal : cause.code();
  failed.message = cause.message().substr(0, 4096);
  log_->warn("task failed (job {}, kind {}, partition {}, shard {}, attempt {}): {}", failed.job_id,
             static_cast<int>(failed.kind), failed.partition, failed.shard, failed.attempt,
             cause.ToString());
  if (job) return ReportTask(job, generation, failed);
  ToMaster(failed);
}

void WorkerService::Impl::OnControl(MessageType type, std::string payload) {
  // Decoding control messages is cheap; the work goes to the pools. By concept: the worker's
  // session with the master, a job's setup and end, its tasks, its reducer shards.
  Status decoded;
  switch (type) {
    case MessageType::kWelcome:
    case MessageType::kShutdown:
      decoded = OnSession(type, std::move(payload));
      break;
    case MessageType::kJobSpecText:
    case MessageType::kStartTraining:
    case MessageType::kCheckpointCommitted:
    case MessageType::kEndJob:
      decoded = OnJobControl(type, std::move(payload));
      break;
    case MessageType::kLoadPartition:
    case MessageType::kRunMapTask:
    case MessageType::kEvaluateTask:
    case MessageType::kPredictTask:
      decoded = OnTask(type, std::move(payload));
      break;
    case MessageType::kReduceRound:
    case MessageType::kSaveShard:
      decoded = OnShardWork(type, std::move(payload));
      break;
    default:
      log_->warn("ignoring {} from the master", MessageTypeName(static_cast<uint16_t>(type)));
      return;
  }
  if (!decoded.ok()) {
    log_->error("bad {} from the master: {}", MessageTypeName(static_cast<uint16_t>(type)),
                decoded.ToString());
  }
}

// Registration (Welcome starts the heartbeats) and the master's Shutdown. Neither is ever
// "bad": a Welcome that does not decode fails Start, a Shutdown stops the worker anyway.
Status WorkerService::Impl::OnSession(MessageType type, std::string payload) {
  switch (type) {
    case MessageType::kWelcome: {
      auto m = msg::DecodeAs<msg::Welcome>(payload);
      {
        MutexLock lock(&mu_);
        if (!registered_set_) {
          registered_set_ = true;
          registered_.set_value(m.ok() ? Status::Ok() : m.status());
        }
      }
      if (m.ok() && m->heartbeat_interval_ms > 0) {
        SendHeartbeats(m->worker_id, std::chrono::milliseconds(m->heartbeat_interval_ms), 0);
      }
      return Status::Ok();
    }
    case MessageType::kShutdown: {
      auto m = msg::DecodeAs<msg::Shutdown>(payload);
      log_->debug("the master asked this worker to stop: {}", m.ok() ? m->reason : "?");
      if (m.ok()) {
        requested_exit_code_ = m->exit_code >= 0 && m->exit_code <= 255 ? m->exit_code : 1;
      }
      Finish(Status::Ok());
      return Status::Ok();
    }
    default:
      return Status::Ok();  // OnControl sends only the types above here
  }
}

// A job's setup (its spec, then its model and shards), its committed checkpoints and its end.
Status WorkerService::Impl::OnJobControl(MessageType type, std::string payload) {
  switch (type) {
    case MessageType::kJobSpecText: {
      auto m = msg::DecodeAs<msg::JobSpecText>(payload);
      if (!m.ok()) return m.status();
      Spawn(shard_pool_, [this, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);  // json log lines of this thread name the job
        msg::JobReady ready;
        Status s = SetUpJob(m, &ready);
        if (s.ok()) return ToMaster(ready);
        ReportFailure(FailureOf(msg::TaskKind::kSetup, m.job_id), s);
      });
      return Status::Ok();
    }
    case MessageType::kStartTraining: {
      auto m = msg::DecodeAs<msg::StartTraining>(payload);
      if (!m.ok()) return m.status();
      Spawn(shard_pool_, [this, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        Status s = StartTraining(m);
        if (s.ok()) {
          return ToMaster(msg::JobReady{m.job_id, msg::JobReady::kTraining, 0, 0, 0, m.placement});
        }
        msg::TaskFailed failed = FailureOf(msg::TaskKind::kSetup, m.job_id);
        failed.round = static_cast<int64_t>(m.placement);  // which placement it answers
        ReportFailure(failed, s);
      });
      return Status::Ok();
    }
    case MessageType::kCheckpointCommitted: {
      auto m = msg::DecodeAs<msg::CheckpointCommitted>(payload);
      if (!m.ok()) return m.status();
      // No recovery goes back past a committed checkpoint: the output kept for it can go.
      if (std::shared_ptr<WorkerJob> job = FindJob(m->job_id)) job->kept->DropThrough(m->step);
      return Status::Ok();
    }
    case MessageType::kEndJob: {
      auto m = msg::DecodeAs<msg::EndJob>(payload);
      if (!m.ok()) return m.status();
      // Tasks still running keep their job alive through their own reference.
      std::shared_ptr<WorkerJob> ended;
      {
        MutexLock lock(&mu_);
        auto it = jobs_.find(m->job_id);
        if (it == jobs_.end()) return Status::Ok();
        ended = std::move(it->second);
        jobs_.erase(it);
      }
      if (ended->spilled_tasks > 0) {
        log_->info("job {}: {} map tasks spilled {} runs ({} bytes) past shuffle.buffer_bytes={}",
                   m->job_id, ended->spilled_tasks.load(), ended->spilled_runs.load(),
                   ended->spilled_bytes.load(), ended->spec.shuffle_buffer_bytes);
      }
      for (int i = 0; i < 3; ++i) {
        const data::PartitionCache* cache = ended->caches[i].get();
        if (!cache || cache->budget_bytes() == data::PartitionCache::kUnbounded) continue;
        log_->info("job {}: data.{} (cache: disk, {} bytes of budget): {} partition reads",
                   m->job_id, msg::DataSetName(static_cast<msg::DataSet>(i)), cache->budget_bytes(),
                   cache->loads());
      }
      if (replayed_tasks_ > 0) {
        log_->info("job {}: {} map tasks were replayed from kept output", m->job_id,
                   replayed_tasks_.exchange(0));
      }
      // A job's partitions, kept output and shards can be gigabytes: freeing them and giving the
      // memory back (WorkerJob's deleter) is done on the pool, not on this thread.
      Spawn(shard_pool_, [ended = std::move(ended)]() mutable { ended.reset(); });
      return Status::Ok();
    }
    default:
      return Status::Ok();  // OnControl sends only the types above here
  }
}

Status WorkerService::Impl::OnTask(MessageType type, std::string payload) {
  switch (type) {
    // Tasks and shard work belong to the job's generation when they arrive (see WorkerJob):
    // their reports are dropped if the job restarts meanwhile.
    case MessageType::kLoadPartition: {
      auto m = msg::DecodeAs<msg::LoadPartition>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        msg::PartitionLoaded loaded;
        Status s = LoadPartition(m, &loaded);
        if (s.ok()) return ReportTask(job.get(), generation, loaded);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return Status::Ok();
    }
    case MessageType::kRunMapTask: {
      auto m = msg::DecodeAs<msg::RunMapTask>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        SetLogRound(m.epoch + 1, m.round + 1);
        msg::TaskFailed failed = MapFailureOf(m);
        Status s = RunMap(m, generation, &failed.shard);
        if (s.ok()) return;
        ReportFailure(failed, s, job.get(), generation);
      });
      return Status::Ok();
    }
    case MessageType::kEvaluateTask: {
      auto m = msg::DecodeAs<msg::EvaluateTask>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        msg::EvalDone done;
        Status s = Evaluate(m, &done);
        if (s.ok()) return ReportTask(job.get(), generation, done);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return Status::Ok();
    }
    case MessageType::kPredictTask: {
      auto m = msg::DecodeAs<msg::PredictTask>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        msg::PredictDone done;
        Status s = Predict(m, &done);
        // A report dropped by a failpoint leaves `done` empty (no outputs): nothing is sent.
        if (s.ok() && done.outputs > 0) return ReportTask(job.get(), generation, done);
        if (!s.ok()) ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return Status::Ok();
    }
    default:
      return Status::Ok();  // OnControl sends only the types above here
  }
}

// Work on the reducer shards this worker hosts: a round's reduce, a checkpoint's save.
Status WorkerService::Impl::OnShardWork(MessageType type, std::string payload) {
  switch (type) {
    case MessageType::kReduceRound: {
      auto m = msg::DecodeAs<msg::ReduceRound>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      // The shard is the one hosted now: a restart that replaces it before this runs must not
      // have its new shard reduced by a request of before.
      Result<ShardRef> shard = Shard(m->job_id, m->shard);
      if (!shard.ok()) {
        ReportFailure(FailureOf(*m), shard.status(), job.get(), generation);
        return Status::Ok();
      }
      const bool small = (*shard)->param_bytes <= kInlineShardWorkBytes;
      auto reduce = [this, job = job, generation = generation, shard = std::move(*shard),
                     m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        SetLogRound(m.epoch + 1, m.round + 1);
        failpoint::Coordinates at;
        at.worker = name_;
        at.epoch = m.epoch;
        at.round = m.round;
        at.shard = m.shard;
        if (failpoint::Hit("reduce-before-commit", at) == failpoint::Action::kDrop) return;
        Status s = Reduce(m, shard);
        if (s.ok()) {
          return ReportTask(job.get(), generation,
                            msg::ShardCommitted{m.job_id, m.epoch, m.round, m.shard, m.step});
        }
        ReportFailure(FailureOf(m), s, job.get(), generation);
      };
      // A small shard reduces here (its inputs are a few small runs): one thread hop less.
      if (small) {
        reduce();
      } else {
        Spawn(shard_pool_, std::move(reduce));
      }
      return Status::Ok();
    }
    case MessageType::kSaveShard: {
      auto m = msg::DecodeAs<msg::SaveShard>(payload);
      if (!m.ok()) return m.status();
      auto [job, generation] = JobAndGeneration(m->job_id);
      Result<ShardRef> shard = Shard(m->job_id, m->shard);
      if (!shard.ok()) {
        ReportFailure(FailureOf(*m), shard.status(), job.get(), generation);
        return Status::Ok();
      }
      Spawn(shard_pool_, [this, job = job, generation = generation, shard = std::move(*shard),
                          m = std::move(*m)] {
        ScopedLogJob log_job(m.job_id);
        msg::ShardSaved saved;
        Status s = job ? SaveShard(m, shard, *job, &saved) : NotFoundError("the job ended");
        if (s.ok()) return ReportTask(job.get(), generation, saved);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return Status::Ok();
    }
    default:
      return Status::Ok();  // OnControl sends only the types above here
  }
}

void WorkerService::Impl::OnData(const std::shared_ptr<Connection>& from, MessageType type,
                                 std::string payload) {
  switch (type) {
    case MessageType::kPushRun:
      if (std::shared_ptr<const void> handed = from->TakeDeliveredMessage()) {
        auto push = std::static_pointer_cast<const msg::PushRun>(std::move(handed));
        if (push->values.size() * sizeof(float) <= kInlineShardWorkBytes) {
          return AcceptPush(from, std::move(push));
        }
        Spawn(shard_pool_, [this, from, push = std::move(push)]() mutable {
          AcceptPush(from, std::move(push));
        });
        return;
      }
      // Small runs are stored here, saving two thread hops per push, which is most of a small
      // model's round; large ones are decoded on the shard pool, keeping this thread free for
      // I/O.
      if (payload.size() <= kInlineShardWorkBytes) {
        return AcceptPush(from, std::move(payload), from->delivered_crc32c());
      }
      Spawn(shard_pool_,
            [this, from, payload = std::move(payload), crc = from->delivered_crc32c()]() mutable {
              AcceptPush(from, std::move(payload), crc);
            });
      return;
    case MessageType::kPullParams: {
      auto pull = msg::DecodeAs<msg::PullParams>(payload);
      if (!pull.ok()) {
        log_->error("bad PullParams from {}: {}; closing", from->peer(), pull.status().ToString());
        return from->Close();
      }
      // Likewise: a small shard's parameters are sent from here.
      auto shard = Shard(pull->job_id, pull->shard);
      if (shard.ok() && (*shard)->param_bytes <= kInlineShardWorkBytes) {
        return ServePull(from, *pull);
      }
      Spawn(shard_pool_, [this, from, pull = std::move(*pull)] { ServePull(from, pull); });
      return;
    }
    default:
      log_->warn("{} sent {} on the data plane; closing", from->peer(),
                 MessageTypeName(static_cast<uint16_t>(type)));
      from->Close();
  }
}

void WorkerService::Impl::OnPeer(MessageType type, std::string payload) {
  if (type == MessageType::kParamsReply) {
    auto m = msg::DecodeAs<msg::ParamsReply>(payload);
    if (!m.ok()) return log_->error("bad ParamsReply: {}", m.status().ToString());
    MutexLock lock(&mu_);
    auto it = pulls_.find(m->request_id);
    if (it == pulls_.end()) return;  // its task gave up waiting
    PendingPull& pending = it->second;
    Result<bool> complete = msg::AddReplyPart(std::move(*m), &pending.assembled);
    if (complete.ok() && !*complete) return;  // more parts to come
    if (complete.ok()) {
      pending.reply.set_value(std::move(*pending.assembled));
    } else {
      pending.reply.set_value(complete.status());
    }
    pulls_.erase(it);
  } else if (type == MessageType::kPushAck) {
    auto m = msg::DecodeAs<msg::PushAck>(payload);
    if (!m.ok()) return log_->error("bad PushAck: {}", m.status().ToString());
    OnPushAck(*m);
  } else {
    log_->warn("ignoring {} from a peer", MessageTypeName(static_cast<uint16_t>(type)));
  }
}

void WorkerService::Impl::OnPushAck(const msg::PushAck& ack) {
  std::shared_ptr<PendingPushes> task;
  size_t released = 0;
  bool complete = false;
  {
    MutexLock lock(&mu_);
    auto it = acks_.find(AckKey{ack.job_id, ack.step, ack.partition, ack.shard, ack.attempt});
    if (it == acks_.end()) return;  // its task already failed or timed out
    task = std::move(it->second);
    acks_.erase(it);
    released = task->Take(ack.shard);
    if (!ack.error.empty() || --task->remaining == 0) {
      for (const AckKey& key : task->keys) acks_.erase(key);
      released += task->TakeAll();
      task->finished = true;
      task->timeout.Cancel();
      complete = true;
    }
  }
  unacked_.Release(released);
  if (!complete) return;
  std::shared_ptr<WorkerJob> job = task->job.lock();
  if (ack.error.empty()) {
    msg::MapTaskDone done = task->done;
    done.peak_rss_bytes = PeakRssBytes();  // the job's peak so far, for the master's report
    return ReportTask(job.get(), task->generation, done);
  }
  // A refused run (a checksum that does not match) must not be replayed from the kept copy.
  if (job) job->kept->Forget(ack.step, ack.partition);
  ReportFailure(MapFailureOf(task->done),
                UnavailableError("reducer shard " + std::to_string(ack.shard) +
                                 " refused the run: " + ack.error),
                job.get(), task->generation);
}

// ---------------------------------------------------------------------------------------------

WorkerService::WorkerService(Transport* transport, WorkerOptions options) {
  if (options.slots <= 0) options.slots = std::max(1u, std::thread::hardware_concurrency());
  if (options.plugin_cache_dir.empty()) options.plugin_cache_dir = DefaultPluginCacheDir();
  impl_ = std::make_shared<Impl>(transport, std::move(options));
}

WorkerService::~WorkerService() { Stop(); }

Status WorkerService::Start() { return impl_->Start(); }

std::optional<Status> WorkerService::Wait(std::chrono::milliseconds timeout) {
  return impl_->Wait(timeout);
}

void WorkerService::Stop() { impl_->Stop(Status::Ok()); }

int WorkerService::requested_exit_code() const { return impl_->requested_exit_code(); }

}  // namespace mrtrain::runtime
