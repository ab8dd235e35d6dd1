#include "runtime/worker/worker_service.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "engine/base/crc32c.h"
#include "engine/base/log.h"
#include "engine/data/dataset.h"
#include "engine/data/partition_cache.h"
#include "engine/tensor/blas.h"
#include "engine/tensor/model_state.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/failpoint/failpoint.h"
#include "runtime/job/job_setup.h"
#include "runtime/job/shipped_job.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/send_budget.h"
#include "runtime/worker/map_output_store.h"
#include "runtime/worker/map_task.h"
#include "runtime/worker/mapper_pool.h"
#include "runtime/worker/row_order.h"
#include "runtime/worker/shard_host.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {
namespace {

using Params = std::shared_ptr<const ModelState>;


std::string DefaultSpillRoot() {
  std::error_code ec;
  std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  return (ec ? std::string("/tmp") : tmp.string()) + "/mrtrain-spill";
}

std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "worker");
  return std::string(host) + ":" + std::to_string(getpid());
}

// The TaskFailed that reports a failure of each kind of work, naming it as the master does.
msg::TaskFailed FailureOf(msg::TaskKind kind, uint64_t job_id) {
  msg::TaskFailed f;
  f.job_id = job_id;
  f.kind = kind;
  return f;
}
template <typename MapTaskLike>  // msg::RunMapTask or msg::MapTaskDone
msg::TaskFailed MapFailureOf(const MapTaskLike& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kMap, m.job_id);
  f.epoch = m.epoch;
  f.round = m.round;
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
msg::TaskFailed FailureOf(const msg::LoadPartition& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kLoad, m.job_id);
  f.set = m.set;
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
msg::TaskFailed FailureOf(const msg::EvaluateTask& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kEvaluate, m.job_id);
  f.round = m.step;  // the evaluation it belongs to
  f.set = m.set;
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
msg::TaskFailed FailureOf(const msg::ReduceRound& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kReduce, m.job_id);
  f.epoch = m.epoch;
  f.round = m.round;
  f.shard = m.shard;
  return f;
}
msg::TaskFailed FailureOf(const msg::SaveShard& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kSave, m.job_id);
  f.epoch = m.epochs_done;
  f.shard = m.shard;
  return f;
}

// Waits for `future` at most `timeout`; `what` names the wait in the error.
template <typename T>
Result<T> Await(std::future<Result<T>>& future, std::chrono::milliseconds timeout,
                const std::string& what) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    return DeadlineExceededError("no " + what + " within " + std::to_string(timeout.count()) +
                                 " ms");
  }
  return future.get();
}

// What a fault test's `corrupt` does to an encoded PushRun: flips its last byte, which lies in
// the run's values (the last field) when it has any, so the shard's checksum catches it.
void CorruptPush(std::string* payload) {
  if (!payload->empty()) payload->back() ^= 0x5A;
}

// A reducer shard this worker hosts, with the lock that serialises its pushes, pulls, reduces
// and saves (they come from different pool threads).
struct HostedShard {
  std::mutex mu;
  std::unique_ptr<ShardHost> host;
  size_t param_bytes = 0;  // of the shard's parameters: what a pull returns
};

// Shard work on messages up to this size runs on the transport thread instead of the pool.
constexpr size_t kInlineShardWorkBytes = 256 << 10;

// What a job needs once the master has fixed the data's shape. Built once by StartTraining,
// then only read (shards have their own locks).
struct TrainingParts {
  std::shared_ptr<const ModelLayout> layout;
  std::unique_ptr<MapperPool> mappers;
  std::unique_ptr<shuffle::Partitioner> partitioner;
  MapTaskConfig config;
  std::unique_ptr<RowOrderCache> row_orders;
  std::vector<std::string> shard_addresses;
  std::map<int64_t, std::unique_ptr<HostedShard>> shards;
  int num_slots = 0;
};

// A hosted shard and what keeps it alive: a late push or pull may be handled while EndJob
// drops the job.
struct ShardRef {
  std::shared_ptr<TrainingParts> parts;
  HostedShard* shard = nullptr;
  HostedShard* operator->() const { return shard; }
};

// One job on this worker.
struct WorkerJob {
  uint64_t id = 0;
  jobs::JobSpec spec;
  plugin::PluginSet plugins;  // outlives every mapper and rule made from it (declared first)
  std::unique_ptr<data::Dataset> datasets[3];
  std::unique_ptr<data::PartitionCache> caches[3];
  std::unique_ptr<MapOutputStore> kept;  // map output until its epoch's checkpoint commits

  // Bumped by every StartTraining: a task handed out before the latest one reports nothing
  // (its pushes went to the shard placement of before; the master has rolled back since).
  // Reports check it and are sent under report_mu, so none slips out after the JobReady that
  // answers a restart.
  std::mutex report_mu;
  uint64_t generation = 0;  // guarded by report_mu
  uint64_t placement = 0;   // of the StartTraining installed last; guarded by report_mu
  uint64_t Generation() {
    std::lock_guard<std::mutex> lock(report_mu);
    return generation;
  }

  std::mutex mu;
  std::shared_ptr<TrainingParts> training;  // guarded by mu; set once
  // Parameters pulled for map and evaluation tasks, by updates applied; the first task to need a
  // step pulls it and the others wait for that pull. Guarded by mu.
  std::map<int64_t, std::shared_future<Result<Params>>> params;

  // Partition p of `set` from the cache, parsed on first use. Errors name the set, the
  // partition and its extent; a partition the job does not have is kInvalidArgument (the
  // master's message came from elsewhere), never an out-of-range read.
  Result<std::shared_ptr<const data::PartitionData>> Partition(msg::DataSet set, int64_t p) {
    data::PartitionCache* cache = caches[static_cast<int>(set)].get();
    if (!cache || p < 0 || p >= cache->dataset().num_partitions()) {
      return InvalidArgumentError("no partition " + std::to_string(p) + " in data." +
                                  msg::DataSetName(set));
    }
    auto partition = cache->Get(p);
    if (!partition.ok()) {
      return partition.status().WithContext(std::string("data.") + msg::DataSetName(set) +
                                            " partition " + std::to_string(p) + " (" +
                                            cache->dataset().DescribePartition(p) + ")");
    }
    return partition;
  }

  Result<std::shared_ptr<TrainingParts>> Training() {
    std::lock_guard<std::mutex> lock(mu);
    if (!training) return FailedPreconditionError("job " + std::to_string(id) + " is not set up");
    return training;
  }
};

using AckKey = std::tuple<uint64_t, int64_t, int64_t, int64_t, int32_t>;  // job step part shard att

// A map task whose runs are pushed and whose acknowledgements are awaited. The compute slot is
// free meanwhile: the last acknowledgement (on the transport thread) reports the task.
struct PendingPushes {
  std::weak_ptr<WorkerJob> job;
  uint64_t generation = 0;  // of the job when the task was handed out
  msg::MapTaskDone done;    // sent once every shard has acknowledged
  std::vector<AckKey> keys;
  int64_t remaining = 0;
  bool finished = false;  // reported (done, failed or timed out)
  TimerHandle timeout;
  // [shard]: bytes of the push to the shard counted in the worker's unacknowledged budget and
  // not yet given back (sent, not acknowledged).
  std::vector<size_t> held;

  // Takes the held bytes of one shard, or of all, for release. REQUIRES: the worker's mu_.
  size_t Take(int64_t shard) { return std::exchange(held[shard], 0); }
  size_t TakeAll() {
    size_t total = 0;
    for (size_t& h : held) total += std::exchange(h, 0);
    return total;
  }
};

}  // namespace

class WorkerService::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(Transport* transport, WorkerOptions options)
      : transport_(transport),
        options_(std::move(options)),
        compute_(options_.slots),
        shard_pool_(std::max(2u, std::thread::hardware_concurrency())),
        unacked_(options_.push_budget_bytes, options_.reply_timeout) {}

  Status Start();
  std::optional<Status> Wait(std::chrono::milliseconds timeout) {
    if (finished_future_.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return finished_future_.get();
  }
  void Stop(const Status& why);

 private:
  // ---- Connections ----
  ConnectionHandler ControlHandler();
  ConnectionHandler DataHandler();
  ConnectionHandler PeerHandler();
  void OnControl(MessageType type, std::string payload);
  void OnData(const std::shared_ptr<Connection>& from, MessageType type, std::string payload);
  void OnPeer(MessageType type, std::string payload);
  Result<std::shared_ptr<Connection>> Peer(const std::string& address);
  void Finish(const Status& status);

  template <typename M>
  void ToMaster(const M& m) {
    std::shared_ptr<Connection> control;
    {
      std::lock_guard<std::mutex> lock(mu_);
      control = control_;
    }
    if (!control) return;
    Status sent = SendMessage(*control, m);
    if (!sent.ok()) log_->warn("cannot report to the master: {}", sent.ToString());
  }
  // Reports a failure to the master; with a job, only if it is still in `generation`.
  void ReportFailure(msg::TaskFailed failed, const Status& cause, WorkerJob* job = nullptr,
                     uint64_t generation = 0);
  // Sends a task's report unless the job has been restarted since the task was handed out.
  template <typename M>
  void ReportTask(WorkerJob* job, uint64_t generation, const M& m) {
    if (!job) return;  // the job is over
    std::lock_guard<std::mutex> lock(job->report_mu);
    if (job->generation != generation) {
      log_->debug("dropping a {} from before the job's restart",
                  MessageTypeName(static_cast<uint16_t>(M::kType)));
      return;
    }
    ToMaster(m);
  }
  // Sends heartbeat `sequence` now and the next one after `interval`, on the transport thread
  // (so a busy compute pool never delays them), until the worker finishes.
  void SendHeartbeats(uint32_t worker_id, std::chrono::milliseconds interval, uint64_t sequence);

  // Runs fn on a pool, keeping the service alive meanwhile.
  template <typename Fn>
  void Spawn(boost::asio::thread_pool& pool, Fn fn) {
    boost::asio::post(pool, [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(); });
  }

  std::shared_ptr<WorkerJob> FindJob(uint64_t id);
  // The job (nullptr if unknown) and its generation now.
  std::pair<std::shared_ptr<WorkerJob>, uint64_t> JobAndGeneration(uint64_t id) {
    std::shared_ptr<WorkerJob> job = FindJob(id);
    const uint64_t generation = job ? job->Generation() : 0;
    return {std::move(job), generation};
  }

  // ---- Jobs ----
  Status SetUpJob(const msg::JobSpecText& text, msg::JobReady* ready);
  Status StartTraining(const msg::StartTraining& start);
  Status LoadPartition(const msg::LoadPartition& task, msg::PartitionLoaded* loaded);
  // Computes the task and pushes its runs; MapTaskDone follows when every shard has
  // acknowledged. An error means the task failed and nothing more will be reported.
  // `unreachable_shard` is set when the task failed because a reducer shard's host could not
  // be reached (the master then blames the host, not the task).
  Status RunMap(const msg::RunMapTask& task, uint64_t generation, int64_t* unreachable_shard);
  // The pushes of a map task: kept from an earlier run of (step, partition) when there is one,
  // else computed (and kept). `stats` gets the task's statistics.
  Result<std::vector<std::string>> MapOutputFor(WorkerJob& job, const TrainingParts& parts,
                                                const msg::RunMapTask& task, api::MapStats* stats,
                                                bool* replayed);
  Status Evaluate(const msg::EvaluateTask& task, msg::EvalDone* done);
  Result<Params> ParamsAfter(WorkerJob& job, const TrainingParts& parts, int64_t updates);
  Result<Params> Pull(WorkerJob& job, const TrainingParts& parts, int64_t updates);

  // ---- Hosted shards ----
  Result<ShardRef> Shard(uint64_t job_id, int64_t shard);
  void AcceptPush(const std::shared_ptr<Connection>& from, std::string payload);
  void ServePull(const std::shared_ptr<Connection>& from, const msg::PullParams& pull);
  Status Reduce(const msg::ReduceRound& round, const ShardRef& shard);
  Status SaveShard(const msg::SaveShard& save, const ShardRef& shard, const WorkerJob& job,
                   msg::ShardSaved* saved);

  failpoint::Coordinates At(const msg::RunMapTask& task) const {
    failpoint::Coordinates at;
    at.worker = name_;
    at.epoch = task.epoch;
    at.round = task.round;
    at.partition = task.partition;
    at.attempt = task.attempt;
    return at;
  }

  // Constant after construction.
  Transport* const transport_;
  const WorkerOptions options_;
  const std::string name_ = options_.name.empty() ? DefaultName() : options_.name;
  const std::shared_ptr<spdlog::logger> log_ = Logger("worker");

  boost::asio::thread_pool compute_;
  boost::asio::thread_pool shard_pool_;

  std::mutex mu_;
  std::shared_ptr<Connection> control_;  // guarded by mu_
  std::string data_address_;             // set by Start
  std::map<uint64_t, std::shared_ptr<WorkerJob>> jobs_;            // guarded by mu_
  std::map<std::string, std::shared_ptr<Connection>> peers_;       // guarded by mu_
  uint64_t next_request_ = 1;                                      // guarded by mu_
  std::map<uint64_t, std::promise<Result<msg::ParamsReply>>> pulls_;  // guarded by mu_
  std::map<AckKey, std::shared_ptr<PendingPushes>> acks_;             // guarded by mu_
  std::atomic<int64_t> replayed_tasks_{0};  // map tasks answered from kept output
  SendBudget unacked_;  // bytes pushed and not yet acknowledged, across this worker's tasks
  bool finished_ = false;                                          // guarded by mu_
  std::promise<Status> finished_promise_;
  std::shared_future<Status> finished_future_ = finished_promise_.get_future().share();
  std::promise<Status> registered_;  // set once, by Welcome or the control connection's end
  bool registered_set_ = false;      // guarded by mu_
};

// ---------------------------------------------------------------------------------------------
// Connections

Status WorkerService::Impl::Start() {
  blas::SetBlasThreads(1);  // tasks run in parallel on the pool; results must not depend on cores
  MRTRAIN_ASSIGN_OR_RETURN(data_address_, transport_->Listen(options_.data_address, DataHandler()));
  const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  Status last = UnavailableError("not tried");
  while (true) {
    std::promise<Result<std::shared_ptr<Connection>>> connected;
    auto future = connected.get_future();
    transport_->Connect(options_.master_address, ControlHandler(),
                        [&connected](Result<std::shared_ptr<Connection>> c) {
                          connected.set_value(std::move(c));
                        });
    Result<std::shared_ptr<Connection>> c = future.get();  // Connect is itself bounded
    if (c.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      control_ = *c;
      break;
    }
    last = c.status();
    // A wrong secret or version will not get better by retrying.
    if (last.code() == StatusCode::kFailedPrecondition ||
        std::chrono::steady_clock::now() >= deadline) {
      return last.WithContext("cannot reach the master at " + options_.master_address);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  msg::Hello hello;
  hello.worker_name = name_;
  hello.slots = static_cast<uint32_t>(options_.slots);
  hello.data_address = data_address_;
  std::shared_ptr<Connection> control;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    std::lock_guard<std::mutex> lock(mu_);
    if (!registered_set_) {
      registered_set_ = true;
      registered_.set_value(status.ok() ? UnavailableError("closed before registering") : status);
    }
    if (finished_) return;
    finished_ = true;
    for (auto& [id, p] : pulls_) pulls.push_back(std::move(p));
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
    std::lock_guard<std::mutex> lock(mu_);
    control = std::move(control_);
    peers.swap(peers_);
  }
  if (control) control->Close();
  for (auto& [address, c] : peers) c->Close();
  compute_.join();
  shard_pool_.join();
  std::lock_guard<std::mutex> lock(mu_);
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
    std::lock_guard<std::mutex> lock(self->mu_);
    for (auto it = self->peers_.begin(); it != self->peers_.end(); ++it) {
      if (it->second == c) {
        self->peers_.erase(it);
        break;
      }
    }
  };
  return h;
}

Result<std::shared_ptr<Connection>> WorkerService::Impl::Peer(const std::string& address) {
  {
    std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = peers_.emplace(address, c);
  if (!inserted) c->Close();  // another thread connected first; use its connection
  return it->second;
}

std::shared_ptr<WorkerJob> WorkerService::Impl::FindJob(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void WorkerService::Impl::SendHeartbeats(uint32_t worker_id, std::chrono::milliseconds interval,
                                         uint64_t sequence) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
  }
  ToMaster(msg::Heartbeat{worker_id, sequence, 0});
  std::weak_ptr<Impl> weak = shared_from_this();
  transport_->RunAfter(interval, [weak, worker_id, interval, sequence] {
    if (auto self = weak.lock()) self->SendHeartbeats(worker_id, interval, sequence + 1);
  });
}

void WorkerService::Impl::ReportFailure(msg::TaskFailed failed, const Status& cause,
                                        WorkerJob* job, uint64_t generation) {
  failed.code = cause.code() == StatusCode::kOk ? StatusCode::kInternal : cause.code();
  failed.message = cause.message().substr(0, 4096);
  log_->warn("task failed (job {}, kind {}, partition {}, shard {}, attempt {}): {}",
             failed.job_id, static_cast<int>(failed.kind), failed.partition, failed.shard,
             failed.attempt, cause.ToString());
  if (job) return ReportTask(job, generation, failed);
  ToMaster(failed);
}

void WorkerService::Impl::OnControl(MessageType type, std::string payload) {
  // Decoding control messages is cheap; the work goes to the pools.
  auto bad = [&](const Status& s) {
    log_->error("bad {} from the master: {}", MessageTypeName(static_cast<uint16_t>(type)),
                s.ToString());
  };
  switch (type) {
    case MessageType::kWelcome: {
      auto m = msg::DecodeAs<msg::Welcome>(payload);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!registered_set_) {
          registered_set_ = true;
          registered_.set_value(m.ok() ? Status::Ok() : m.status());
        }
      }
      if (m.ok() && m->heartbeat_interval_ms > 0) {
        SendHeartbeats(m->worker_id, std::chrono::milliseconds(m->heartbeat_interval_ms), 0);
      }
      return;
    }
    case MessageType::kJobSpecText: {
      auto m = msg::DecodeAs<msg::JobSpecText>(payload);
      if (!m.ok()) return bad(m.status());
      Spawn(shard_pool_, [this, m = std::move(*m)] {
        msg::JobReady ready;
        Status s = SetUpJob(m, &ready);
        if (s.ok()) return ToMaster(ready);
        ReportFailure(FailureOf(msg::TaskKind::kSetup, m.job_id), s);
      });
      return;
    }
    case MessageType::kStartTraining: {
      auto m = msg::DecodeAs<msg::StartTraining>(payload);
      if (!m.ok()) return bad(m.status());
      Spawn(shard_pool_, [this, m = std::move(*m)] {
        Status s = StartTraining(m);
        if (s.ok()) {
          return ToMaster(msg::JobReady{m.job_id, msg::JobReady::kTraining, 0, 0, 0, m.placement});
        }
        msg::TaskFailed failed = FailureOf(msg::TaskKind::kSetup, m.job_id);
        failed.round = static_cast<int64_t>(m.placement);  // which placement it answers
        ReportFailure(failed, s);
      });
      return;
    }
    // Tasks and shard work belong to the job's generation when they arrive (see WorkerJob):
    // their reports are dropped if the job restarts meanwhile.
    case MessageType::kLoadPartition: {
      auto m = msg::DecodeAs<msg::LoadPartition>(payload);
      if (!m.ok()) return bad(m.status());
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        msg::PartitionLoaded loaded;
        Status s = LoadPartition(m, &loaded);
        if (s.ok()) return ReportTask(job.get(), generation, loaded);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return;
    }
    case MessageType::kRunMapTask: {
      auto m = msg::DecodeAs<msg::RunMapTask>(payload);
      if (!m.ok()) return bad(m.status());
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        msg::TaskFailed failed = MapFailureOf(m);
        Status s = RunMap(m, generation, &failed.shard);
        if (s.ok()) return;
        ReportFailure(failed, s, job.get(), generation);
      });
      return;
    }
    case MessageType::kEvaluateTask: {
      auto m = msg::DecodeAs<msg::EvaluateTask>(payload);
      if (!m.ok()) return bad(m.status());
      auto [job, generation] = JobAndGeneration(m->job_id);
      Spawn(compute_, [this, job = job, generation = generation, m = std::move(*m)] {
        msg::EvalDone done;
        Status s = Evaluate(m, &done);
        if (s.ok()) return ReportTask(job.get(), generation, done);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return;
    }
    case MessageType::kReduceRound: {
      auto m = msg::DecodeAs<msg::ReduceRound>(payload);
      if (!m.ok()) return bad(m.status());
      auto [job, generation] = JobAndGeneration(m->job_id);
      // The shard is the one hosted now: a restart that replaces it before this runs must not
      // have its new shard reduced by a request of before.
      Result<ShardRef> shard = Shard(m->job_id, m->shard);
      if (!shard.ok()) return ReportFailure(FailureOf(*m), shard.status(), job.get(), generation);
      const bool small = (*shard)->param_bytes <= kInlineShardWorkBytes;
      auto reduce = [this, job = job, generation = generation, shard = std::move(*shard),
                     m = std::move(*m)] {
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
      if (small) return reduce();
      Spawn(shard_pool_, std::move(reduce));
      return;
    }
    case MessageType::kSaveShard: {
      auto m = msg::DecodeAs<msg::SaveShard>(payload);
      if (!m.ok()) return bad(m.status());
      auto [job, generation] = JobAndGeneration(m->job_id);
      Result<ShardRef> shard = Shard(m->job_id, m->shard);
      if (!shard.ok()) return ReportFailure(FailureOf(*m), shard.status(), job.get(), generation);
      Spawn(shard_pool_, [this, job = job, generation = generation, shard = std::move(*shard),
                          m = std::move(*m)] {
        msg::ShardSaved saved;
        Status s = job ? SaveShard(m, shard, *job, &saved) : NotFoundError("the job ended");
        if (s.ok()) return ReportTask(job.get(), generation, saved);
        ReportFailure(FailureOf(m), s, job.get(), generation);
      });
      return;
    }
    case MessageType::kCheckpointCommitted: {
      auto m = msg::DecodeAs<msg::CheckpointCommitted>(payload);
      if (!m.ok()) return bad(m.status());
      // No recovery goes back past a committed checkpoint: the output kept for it can go.
      if (std::shared_ptr<WorkerJob> job = FindJob(m->job_id)) job->kept->DropThrough(m->step);
      return;
    }
    case MessageType::kEndJob: {
      auto m = msg::DecodeAs<msg::EndJob>(payload);
      if (!m.ok()) return bad(m.status());
      // Tasks still running keep their job alive through their own reference.
      std::lock_guard<std::mutex> lock(mu_);
      if (jobs_.erase(m->job_id) && replayed_tasks_ > 0) {
        log_->info("job {}: {} map tasks were replayed from kept output", m->job_id,
                   replayed_tasks_.exchange(0));
      }
      return;
    }
    case MessageType::kShutdown: {
      auto m = msg::DecodeAs<msg::Shutdown>(payload);
      log_->debug("the master asked this worker to stop: {}", m.ok() ? m->reason : "?");
      Finish(Status::Ok());
      return;
    }
    default:
      log_->warn("ignoring {} from the master", MessageTypeName(static_cast<uint16_t>(type)));
  }
}

void WorkerService::Impl::OnData(const std::shared_ptr<Connection>& from, MessageType type,
                                 std::string payload) {
  switch (type) {
    case MessageType::kPushRun:
      // Small runs are stored here, saving two thread hops per push, which is most of a small
      // model's round; large ones are decoded on the shard pool, keeping this thread free for
      // I/O.
      if (payload.size() <= kInlineShardWorkBytes) return AcceptPush(from, std::move(payload));
      Spawn(shard_pool_, [this, from, payload = std::move(payload)]() mutable {
        AcceptPush(from, std::move(payload));
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
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pulls_.find(m->request_id);
    if (it == pulls_.end()) return;  // its task gave up waiting
    it->second.set_value(std::move(*m));
    pulls_.erase(it);
  } else if (type == MessageType::kPushAck) {
    auto m = msg::DecodeAs<msg::PushAck>(payload);
    if (!m.ok()) return log_->error("bad PushAck: {}", m.status().ToString());
    std::shared_ptr<PendingPushes> task;
    size_t released = 0;
    bool complete = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = acks_.find(AckKey{m->job_id, m->step, m->partition, m->shard, m->attempt});
      if (it == acks_.end()) return;  // its task already failed or timed out
      task = std::move(it->second);
      acks_.erase(it);
      released = task->Take(m->shard);
      if (!m->error.empty() || --task->remaining == 0) {
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
    if (m->error.empty()) return ReportTask(job.get(), task->generation, task->done);
    // A refused run (a checksum that does not match) must not be replayed from the kept copy.
    if (job) job->kept->Forget(m->step, m->partition);
    ReportFailure(MapFailureOf(task->done),
                  UnavailableError("reducer shard " + std::to_string(m->shard) +
                                   " refused the run: " + m->error),
                  job.get(), task->generation);
  } else {
    log_->warn("ignoring {} from a peer", MessageTypeName(static_cast<uint16_t>(type)));
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs

Status WorkerService::Impl::SetUpJob(const msg::JobSpecText& text, msg::JobReady* ready) {
  auto job = std::make_shared<WorkerJob>();
  job->id = text.job_id;
  job->kept = std::make_unique<MapOutputStore>(
      options_.keep_budget_bytes,
      (options_.spill_dir.empty() ? DefaultSpillRoot() : options_.spill_dir) + "/job" +
          std::to_string(text.job_id) + "-" + std::to_string(getpid()));
  MRTRAIN_ASSIGN_OR_RETURN(job->spec, UnpackJob(text, options_.plugin_cache_dir));
  MRTRAIN_ASSIGN_OR_RETURN(job->plugins, LoadPlugins(job->spec));
  const data::DatasetSpec* specs[3] = {&job->spec.train,
                                       job->spec.test ? &*job->spec.test : nullptr,
                                       job->spec.validation ? &*job->spec.validation : nullptr};
  int64_t counts[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (!specs[i]) continue;
    auto opened = data::Dataset::Open(*specs[i]);
    if (!opened.ok()) {
      return opened.status().WithContext(std::string("data.") +
                                         msg::DataSetName(static_cast<msg::DataSet>(i)));
    }
    job->datasets[i] = std::move(*opened);
    job->caches[i] = std::make_unique<data::PartitionCache>(job->datasets[i].get());
    counts[i] = job->datasets[i]->num_partitions();
  }
  *ready = msg::JobReady{text.job_id, msg::JobReady::kSpec, counts[0], counts[1], counts[2]};
  std::lock_guard<std::mutex> lock(mu_);
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
  config.model_averaging = spec.mode == jobs::JobSpec::Mode::kModelAveraging;
  config.local_learning_rate = spec.local_learning_rate;
  config.local_batch_size = spec.local_batch_size;
  parts->row_orders = std::make_unique<RowOrderCache>(spec.seed);

  if (!start.hosted_shards.empty()) {
    MRTRAIN_ASSIGN_OR_RETURN(auto probe, MakeRule(spec, job->plugins));
    parts->num_slots = probe->NumSlots();
    // The starting state: the checkpoint to resume from, or the seeded initial parameters
    // (every host computes the same ones and keeps its blocks).
    ModelState state;
    if (start.resume_epochs > 0) {
      CheckpointDir dir(spec.output_dir + "/checkpoints", spec.checkpoint_keep);
      MRTRAIN_ASSIGN_OR_RETURN(Checkpoint ckpt, dir.Load(start.resume_epochs));
      state = std::move(ckpt.state);
      if (state.tensors.size() != static_cast<size_t>(parts->layout->num_tensors()) ||
          state.slots.size() != static_cast<size_t>(parts->num_slots)) {
        return FailedPreconditionError("cannot resume: the checkpoint's model does not match");
      }
      state.layout = parts->layout;
    } else {
      state = ModelState::Zeros(parts->layout, parts->num_slots);
      InitializeParameters(spec.init, static_cast<float>(spec.init_scale), spec.seed, &state);
    }
    const int64_t num_partitions = job->datasets[0]->num_partitions();
    for (int64_t s : start.hosted_shards) {
      if (s < 0 || s >= spec.reducers) {
        return InvalidArgumentError("no reducer shard " + std::to_string(s));
      }
      MRTRAIN_ASSIGN_OR_RETURN(auto rule, MakeRule(spec, job->plugins));
      auto shard = std::make_unique<ReducerShard>(
          static_cast<int>(s), parts->layout,
          shuffle::KeysOfShard(*parts->partitioner, *parts->layout, static_cast<int>(s)),
          std::move(rule), static_cast<float>(spec.l1), static_cast<float>(spec.l2));
      shard->LoadFrom(state);
      auto hosted = std::make_unique<HostedShard>();
      for (ParamKey key : shard->keys()) {
        hosted->param_bytes += sizeof(float) * parts->layout->Range(key).length;
      }
      hosted->host = std::make_unique<ShardHost>(std::move(shard), num_partitions, start.step);
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
    std::lock_guard<std::mutex> report_lock(job->report_mu);
    // Two StartTrainings may be built at once on the pool; the older placement must not
    // replace the newer one when it finishes last (the master ignores its answer anyway).
    if (start.placement < job->placement) return Status::Ok();
    job->placement = start.placement;
    ++job->generation;
    std::lock_guard<std::mutex> lock(job->mu);
    job->training = std::move(parts);
    job->params.clear();  // pulled from the shards of before
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
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
  for (int64_t s = 0; s < num_shards; ++s) {
    MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Connection> peer, Peer(parts.shard_addresses[s]));
    msg::PullParams pull;
    pull.job_id = job.id;
    pull.shard = s;
    pull.step = updates + 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return UnavailableError("the worker is stopping");
      pull.request_id = next_request_++;
      replies.push_back(pulls_[pull.request_id].get_future());
    }
    MRTRAIN_RETURN_IF_ERROR(SendMessage(*peer, pull));
  }
  auto state = std::make_shared<ModelState>(ModelState::Zeros(parts.layout, 0));
  state->step = updates;
  size_t keys_seen = 0;
  for (int64_t s = 0; s < num_shards; ++s) {
    const std::string what = "parameters from reducer shard " + std::to_string(s) + " at " +
                             parts.shard_addresses[s];
    MRTRAIN_ASSIGN_OR_RETURN(msg::ParamsReply reply,
                             Await(replies[s], options_.reply_timeout, what));
    if (!reply.error.empty()) return UnavailableError(what + ": " + reply.error);
    if (reply.step != updates) {
      return FailedPreconditionError(what + ": the shard holds step " +
                                     std::to_string(reply.step) + ", wanted " +
                                     std::to_string(updates));
    }
    for (size_t i = 0; i < reply.keys.size(); ++i) {
      const ParamKey key = ParamKey::FromPacked(reply.keys[i]);
      const int64_t length = reply.offsets[i + 1] - reply.offsets[i];
      if (!parts.layout->IsValid(key) || parts.layout->Range(key).length != length) {
        return CorruptionError(what + ": block " + std::to_string(key.block()) + " of tensor " +
                               std::to_string(key.tensor()) + " does not fit the model");
      }
      state->WriteBlock(key, reply.values.data() + reply.offsets[i]);
    }
    keys_seen += reply.keys.size();
  }
  if (keys_seen != parts.layout->keys().size()) {
    return CorruptionError("the reducer shards sent " + std::to_string(keys_seen) +
                           " blocks; the model has " +
                           std::to_string(parts.layout->keys().size()));
  }
  return Params(std::move(state));
}

Result<Params> WorkerService::Impl::ParamsAfter(WorkerJob& job, const TrainingParts& parts,
                                                int64_t updates) {
  std::promise<Result<Params>> promise;
  std::shared_future<Result<Params>> future;
  bool mine = false;
  {
    std::lock_guard<std::mutex> lock(job.mu);
    auto it = job.params.find(updates);
    if (it != job.params.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      job.params[updates] = future;
      mine = true;
      // Only the newest steps are still asked for (a straggler may want the previous one).
      while (job.params.size() > 2) job.params.erase(job.params.begin());
    }
  }
  if (mine) {
    Result<Params> pulled = Pull(job, parts, updates);
    if (!pulled.ok()) {  // let the next attempt pull again
      std::lock_guard<std::mutex> lock(job.mu);
      job.params.erase(updates);
    }
    promise.set_value(std::move(pulled));
  }
  if (future.wait_for(options_.reply_timeout) != std::future_status::ready) {
    return DeadlineExceededError("no parameters for step " + std::to_string(updates));
  }
  return future.get();
}

Result<std::vector<std::string>> WorkerService::Impl::MapOutputFor(WorkerJob& job,
                                                                  const TrainingParts& parts,
                                                                  const msg::RunMapTask& task,
                                                                  api::MapStats* stats,
                                                                  bool* replayed) {
  const int64_t num_shards = static_cast<int64_t>(parts.shard_addresses.size());
  // A replay after a restart: the pushes this worker kept, with this attempt's number.
  Result<std::optional<KeptOutput>> kept = job.kept->Find(task.step, task.partition);
  if (!kept.ok()) log_->warn("computing the task again: {}", kept.status().ToString());
  if (kept.ok() && *kept && static_cast<int64_t>((*kept)->pushes.size()) == num_shards) {
    std::vector<std::string> payloads;
    for (std::string& bytes : (*kept)->pushes) {
      MRTRAIN_ASSIGN_OR_RETURN(msg::PushRun push, msg::DecodeAs<msg::PushRun>(bytes));
      bytes = std::string();
      push.attempt = task.attempt;
      MRTRAIN_ASSIGN_OR_RETURN(std::string payload, msg::Encode(push));
      payloads.push_back(std::move(payload));
    }
    *stats = (*kept)->stats;
    ++replayed_tasks_;
    *replayed = true;
    return payloads;
  }

  MRTRAIN_ASSIGN_OR_RETURN(auto partition, job.Partition(msg::DataSet::kTrain, task.partition));
  MRTRAIN_ASSIGN_OR_RETURN(Params params, ParamsAfter(job, parts, task.step - 1));
  const TaskId id{task.epoch, task.round, task.partition, task.attempt};
  // A combiner serves one task at a time, so each task makes its own (cheap: a constructor).
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<api::Combiner> combiner,
                           MakeCombiner(job.spec, job.plugins));
  MapTaskOutput output;
  {
    auto mapper = parts.mappers->Borrow();
    MRTRAIN_ASSIGN_OR_RETURN(output,
                             RunMapTask(parts.config, id, *partition, params->View(), *mapper,
                                        *parts.partitioner, *parts.row_orders, combiner.get()));
  }
  // One run to every shard, empty ones too: a shard reduces once it has every partition's.
  std::vector<std::string> payloads;
  for (int64_t s = 0; s < num_shards; ++s) {
    msg::PushRun push;
    push.job_id = task.job_id;
    push.epoch = task.epoch;
    push.round = task.round;
    push.step = task.step;
    push.partition = task.partition;
    push.shard = s;
    push.attempt = task.attempt;
    push.values_crc32c = Crc32c(output.runs[s].values.data(),
                                output.runs[s].values.size() * sizeof(float));
    msg::SetRun(std::move(output.runs[s]), &push);
    output.runs[s] = shuffle::Run();
    MRTRAIN_ASSIGN_OR_RETURN(std::string payload, msg::Encode(push));
    payloads.push_back(std::move(payload));
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
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> payloads,
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
  pending->done = msg::MapTaskDone{task.job_id,   task.epoch,     task.round,
                                   task.partition, task.attempt,   stats.loss_sum,
                                   stats.examples, stats.correct, 0};
  for (int64_t s = 0; s < num_shards; ++s) {
    pending->keys.push_back(AckKey{task.job_id, task.step, task.partition, s, task.attempt});
  }
  pending->remaining = num_shards;
  pending->held.assign(num_shards, 0);
  {
    // Registered before the first send: an acknowledgement may come back at once.
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return UnavailableError("the worker is stopping");
    for (const AckKey& key : pending->keys) acks_[key] = pending;
  }
  // Whatever stops the pushes (a failed send, no acknowledgement in time) fails the task once.
  auto give_up = [this, pending](const Status& why) -> Status {
    size_t released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending->finished) return Status::Ok();
      pending->finished = true;
      for (const AckKey& key : pending->keys) acks_.erase(key);
      released = pending->TakeAll();
    }
    unacked_.Release(released);
    return why;
  };
  int64_t bytes_sent = 0;
  for (const std::string& p : payloads) bytes_sent += static_cast<int64_t>(p.size());
  {
    // Before the first send: only the last acknowledgement completes the task and reads it,
    // under the same lock.
    std::lock_guard<std::mutex> lock(mu_);
    pending->done.bytes_sent = bytes_sent;
  }
  for (int64_t s = 0; s < num_shards; ++s) {
    // Bounded memory: the worker's unacknowledged pushes stay within push_budget_bytes, so a
    // slow reducer (acknowledging late) makes its mappers wait here instead of piling runs up
    // in its queue. The connection's own send budget bounds what waits to be written.
    const size_t bytes = payloads[s].size();
    Status reserved = unacked_.Acquire(bytes, /*may_wait=*/true, parts->shard_addresses[s]);
    if (!reserved.ok()) {
      return give_up(reserved.WithContext("push to reducer shard " + std::to_string(s)));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
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
    auto peer = Peer(parts->shard_addresses[s]);
    Status sent = peer.ok() ? (*peer)->Send(MessageType::kPushRun, std::move(payloads[s]))
                            : peer.status();
    payloads[s] = std::string();
    if (!sent.ok()) {
      if (sent.code() == StatusCode::kUnavailable) *unreachable_shard = s;
      return give_up(sent.WithContext("push to reducer shard " + std::to_string(s) + " at " +
                                      parts->shard_addresses[s]));
    }
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  std::weak_ptr<WorkerJob> weak_job = job;
  TimerHandle timer = transport_->RunAfter(options_.reply_timeout, [weak, weak_job, give_up,
                                                                      pending, task, generation] {
    auto self = weak.lock();
    if (!self) return;
    msg::TaskFailed failed = MapFailureOf(task);
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      for (size_t s = 0; s < pending->held.size() && failed.shard < 0; ++s) {
        if (pending->held[s] > 0) failed.shard = static_cast<int64_t>(s);  // the first silent one
      }
    }
    Status timed_out = give_up(UnavailableError(
        "no acknowledgement of the push from reducer shard " + std::to_string(failed.shard) +
        " within the reply timeout"));
    if (timed_out.ok()) return;
    self->ReportFailure(failed, timed_out, weak_job.lock().get(), generation);
  });
  std::lock_guard<std::mutex> lock(mu_);
  pending->timeout = timer;
  if (pending->finished) timer.Cancel();
  return Status::Ok();
}

Status WorkerService::Impl::Evaluate(const msg::EvaluateTask& task, msg::EvalDone* done) {
  std::shared_ptr<WorkerJob> job = FindJob(task.job_id);
  if (!job) return NotFoundError("job " + std::to_string(task.job_id) + " is not set up here");
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<TrainingParts> parts, job->Training());
  MRTRAIN_ASSIGN_OR_RETURN(auto partition, job->Partition(task.set, task.partition));
  MRTRAIN_ASSIGN_OR_RETURN(Params params, ParamsAfter(*job, *parts, task.step));
  auto mapper = parts->mappers->Borrow();
  MRTRAIN_ASSIGN_OR_RETURN(api::MapStats stats,
                           EvaluatePartition(*partition, parts->config.num_features, 1024,
                                             params->View(), *mapper));
  *done = msg::EvalDone{task.job_id,    task.set,       task.partition, task.attempt,
                        task.step,      stats.loss_sum, stats.examples, stats.correct};
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Hosted shards

Result<ShardRef> WorkerService::Impl::Shard(uint64_t job_id, int64_t shard) {
  std::shared_ptr<WorkerJob> job = FindJob(job_id);
  if (!job) return NotFoundError("job " + std::to_string(job_id) + " is not running here");
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<TrainingParts> parts, job->Training());
  auto it = parts->shards.find(shard);
  if (it == parts->shards.end()) {
    return NotFoundError("reducer shard " + std::to_string(shard) + " of job " +
                         std::to_string(job_id) + " is not hosted here");
  }
  HostedShard* hosted = it->second.get();
  return ShardRef{std::move(parts), hosted};
}

void WorkerService::Impl::AcceptPush(const std::shared_ptr<Connection>& from,
                                     std::string payload) {
  auto push = msg::DecodeAs<msg::PushRun>(payload);
  payload = std::string();
  if (!push.ok()) {
    log_->error("bad PushRun from {}: {}; closing", from->peer(), push.status().ToString());
    return from->Close();
  }
  msg::PushAck ack{push->job_id, push->step, push->partition, push->shard, push->attempt, 0, ""};
  Result<ShardRef> shard = Shard(push->job_id, push->shard);
  if (!shard.ok()) {
    ack.error = shard.status().message();
  } else if (Crc32c(push->values.data(), push->values.size() * sizeof(float)) !=
             push->values_crc32c) {
    ack.error = "the run of partition " + std::to_string(push->partition) + " for step " +
                std::to_string(push->step) + " fails its checksum";
    log_->warn("refusing a push from {}: {}", from->peer(), ack.error);
  } else {
    std::lock_guard<std::mutex> lock((*shard)->mu);
    const int64_t dropped = (*shard)->host->dropped_runs();
    Status accepted =
        (*shard)->host->AcceptRun(push->step, push->partition, msg::TakeRun(&*push));
    if (!accepted.ok()) ack.error = accepted.message();
    ack.duplicate = (*shard)->host->dropped_runs() != dropped;
  }
  Status sent = SendMessage(*from, ack);
  if (!sent.ok()) log_->warn("cannot acknowledge a push to {}: {}", from->peer(), sent.ToString());
}

void WorkerService::Impl::ServePull(const std::shared_ptr<Connection>& from,
                                    const msg::PullParams& request) {
  const msg::PullParams* pull = &request;
  msg::ParamsReply reply;
  reply.request_id = pull->request_id;
  Result<ShardRef> shard = Shard(pull->job_id, pull->shard);
  if (!shard.ok()) {
    reply.error = shard.status().message();
  } else {
    std::lock_guard<std::mutex> lock((*shard)->mu);
    reply.step = (*shard)->host->last_reduced_step();
    if (reply.step == pull->step - 1) msg::SetRun((*shard)->host->shard().ParamsRun(), &reply);
  }
  failpoint::Coordinates at;
  at.worker = name_;
  at.shard = pull->shard;
  if (failpoint::Hit("pull-before-reply", at) == failpoint::Action::kDrop) return;
  Status sent = SendMessage(*from, reply);
  if (!sent.ok()) log_->warn("cannot answer a pull from {}: {}", from->peer(), sent.ToString());
}

Status WorkerService::Impl::Reduce(const msg::ReduceRound& round, const ShardRef& shard) {
  std::shared_ptr<WorkerJob> job = FindJob(round.job_id);
  RoundUpdate update;
  update.step = round.step;
  update.learning_rate = round.learning_rate;
  update.example_count = static_cast<double>(round.example_count);
  update.sorted_runs = job && job->spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort;
  std::lock_guard<std::mutex> lock(shard->mu);
  if (shard->host->last_reduced_step() == round.step) return Status::Ok();  // a repeated request
  return shard->host->Reduce(update);
}

Status WorkerService::Impl::SaveShard(const msg::SaveShard& save, const ShardRef& shard,
                                     const WorkerJob& job, msg::ShardSaved* saved) {
  ShardFile file;
  {
    std::lock_guard<std::mutex> lock(shard->mu);
    const ReducerShard& reducer = shard->host->shard();
    file.keys = reducer.keys();  // ascending, as KeysOfShard gives them
    file.values = reducer.StateBlocks();
    file.num_slots = reducer.num_slots();
    file.step = shard->host->last_reduced_step();
  }
  file.epochs_done = save.epochs_done;
  file.shard = static_cast<int32_t>(save.shard);
  file.num_shards = job.spec.reducers;
  file.fingerprint = job.spec.Fingerprint();
  failpoint::Coordinates at;
  at.worker = name_;
  at.epoch = save.epochs_done;
  at.shard = save.shard;
  MRTRAIN_ASSIGN_OR_RETURN(
      ShardFileInfo info, WriteShardFile(save.path, file, [&at](const std::string& tmp) {
        switch (failpoint::Hit("checkpoint-mid-write", at)) {
          case failpoint::Action::kDrop:
            std::remove(tmp.c_str());  // the write is lost: the rename then fails
            break;
          case failpoint::Action::kCorrupt: {
            std::fstream f(tmp, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(0, std::ios::end);
            const std::streamoff middle = f.tellg() / 2;
            char c = 0;
            f.seekg(middle);
            f.get(c);
            f.seekp(middle);
            f.put(static_cast<char>(c ^ 0x5A));
            break;
          }
          default:
            break;
        }
      }));
  // Read back before it is reported: a file damaged on its way to the disk is written again
  // (the master retries the save) instead of committed into the checkpoint.
  MRTRAIN_RETURN_IF_ERROR(ReadShardFile(save.path, info).status());
  *saved = msg::ShardSaved{save.job_id, save.shard, save.epochs_done, info.bytes, info.crc32c};
  return Status::Ok();
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

}  // namespace mrtrain::runtime
