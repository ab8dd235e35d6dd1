#pragma once

// The worker's internals, shared by its three parts: worker_service.cc (connections: the
// master, the data plane, peers; registration and heartbeats), worker_tasks.cc (job setup and
// the tasks: load, map, evaluate, parameter pulls) and worker_shards.cc (the reducer shards it
// hosts: pushes, pulls, reduces, saves). Include worker_service.h, not this.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "engine/base/crc32c.h"
#include "engine/base/log.h"
#include "engine/base/mutex.h"
#include "engine/data/dataset.h"
#include "engine/data/partition_cache.h"
#include "engine/tensor/blas.h"
#include "engine/tensor/model_state.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/failpoint/failpoint.h"
#include "runtime/job/job_setup.h"
#include "runtime/job/shipped_job.h"
#include "runtime/predict/predict_model.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/send_budget.h"
#include "runtime/worker/map_output_store.h"
#include "runtime/worker/map_task.h"
#include "runtime/worker/mapper_pool.h"
#include "runtime/worker/node_output.h"
#include "runtime/worker/row_order.h"
#include "runtime/worker/shard_host.h"
#include "runtime/worker/worker_service.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::runtime {
namespace worker_internal {

using Params = std::shared_ptr<const ModelState>;

inline std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "worker");
  return std::string(host) + ":" + std::to_string(getpid());
}

// The TaskFailed that reports a failure of each kind of work, naming it as the master does.
inline msg::TaskFailed FailureOf(msg::TaskKind kind, uint64_t job_id) {
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
  f.partition_count = m.partition_count;
  f.attempt = m.attempt;
  return f;
}
inline msg::TaskFailed FailureOf(const msg::LoadPartition& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kLoad, m.job_id);
  f.set = m.set;
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
inline msg::TaskFailed FailureOf(const msg::EvaluateTask& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kEvaluate, m.job_id);
  f.round = m.step;  // the evaluation it belongs to
  f.set = m.set;
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
inline msg::TaskFailed FailureOf(const msg::PredictTask& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kPredict, m.job_id);
  f.partition = m.partition;
  f.attempt = m.attempt;
  return f;
}
inline msg::TaskFailed FailureOf(const msg::ReduceRound& m) {
  msg::TaskFailed f = FailureOf(msg::TaskKind::kReduce, m.job_id);
  f.epoch = m.epoch;
  f.round = m.round;
  f.shard = m.shard;
  return f;
}
inline msg::TaskFailed FailureOf(const msg::SaveShard& m) {
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

// A reducer shard this worker hosts, with the lock that serialises its pushes, pulls, reduces
// and saves (they come from different pool threads).
struct HostedShard {
  Mutex mu;
  std::unique_ptr<ShardHost> host PT_GUARDED_BY(mu);
  size_t param_bytes = 0;  // of the shard's parameters: what a pull returns
};

// Row keys in one PullParams: 8 MiB of keys, well under the frame limit.
inline constexpr size_t kRowsPerPull = size_t{1} << 20;

// Shard work on messages up to this size runs on the transport thread instead of the pool.
inline constexpr size_t kInlineShardWorkBytes = 256 << 10;

// What a job needs once the master has fixed the data's shape. Built once by StartTraining,
// then only read (shards have their own locks).
struct TrainingParts {
  std::shared_ptr<const ModelLayout> layout;
  std::unique_ptr<MapperPool> mappers;
  std::shared_ptr<const shuffle::Partitioner> partitioner;
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
  // Where map tasks spill output past shuffle.buffer_bytes; removed with the job. Each task
  // removes its own files; what the job counts is logged when it ends.
  std::string map_spill_dir;
  std::atomic<int64_t> spilled_tasks{0}, spilled_runs{0}, spilled_bytes{0};

  // Bumped by every StartTraining: a task handed out before the latest one reports nothing
  // (its pushes went to the shard placement of before; the master has rolled back since).
  // Reports check it and are sent under report_mu, so none slips out after the JobReady that
  // answers a restart.
  Mutex report_mu;
  uint64_t generation GUARDED_BY(report_mu) = 0;
  // of the StartTraining installed last
  uint64_t placement GUARDED_BY(report_mu) = 0;
  uint64_t Generation() EXCLUDES(report_mu) {
    MutexLock lock(&report_mu);
    return generation;
  }

  Mutex mu;
  std::shared_ptr<TrainingParts> training GUARDED_BY(mu);  // set by each StartTraining
  // Parameters pulled for map and evaluation tasks, by updates applied; the first task to need a
  // step pulls it and the others wait for that pull.
  std::map<int64_t, std::shared_future<Result<Params>>> params GUARDED_BY(mu);

  // Partition p of `set` from the cache, parsed on first use (and again after the cache
  // dropped it, with `cache: disk`). Errors name the set, the partition and its extent; a
  // partition the job does not have is kInvalidArgument (the master's message came from
  // elsewhere), never an out-of-range read. `read_ahead`: a task of a loop over this worker's
  // partitions wants it, so the cache starts reading the next one (cache: disk only).
  Result<std::shared_ptr<const data::PartitionData>> Partition(msg::DataSet set, int64_t p,
                                                               bool read_ahead = false) {
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
    if (read_ahead) cache->PrefetchAfter(p);
    return partition;
  }

  // A predict job's model, read on its first task (runtime/predict/predict_model.h).
  std::shared_ptr<PredictModel> predict_model GUARDED_BY(mu);

  Result<std::shared_ptr<TrainingParts>> Training() EXCLUDES(mu) {
    MutexLock lock(&mu);
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

}  // namespace worker_internal

// Only the worker's three .cc files include this header.
using worker_internal::AckKey;
using worker_internal::Await;
using worker_internal::DefaultName;
using worker_internal::FailureOf;
using worker_internal::HostedShard;
using worker_internal::kInlineShardWorkBytes;
using worker_internal::MapFailureOf;
using worker_internal::Params;
using worker_internal::PendingPushes;
using worker_internal::ShardRef;
using worker_internal::TrainingParts;
using worker_internal::WorkerJob;

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
  int requested_exit_code() const { return requested_exit_code_.load(); }

 private:
  // ---- Connections ----
  ConnectionHandler ControlHandler();
  ConnectionHandler DataHandler();
  ConnectionHandler PeerHandler();
  void OnControl(MessageType type, std::string payload);
  // OnControl's handlers, by concept; each returns the error of a message that does not decode.
  Status OnSession(MessageType type, std::string payload);
  Status OnJobControl(MessageType type, std::string payload);
  Status OnTask(MessageType type, std::string payload);
  Status OnShardWork(MessageType type, std::string payload);
  void OnData(const std::shared_ptr<Connection>& from, MessageType type, std::string payload);
  void OnPeer(MessageType type, std::string payload);
  // A push's acknowledgement, from a peer or from this worker's own shard (PushToOwnShard).
  void OnPushAck(const msg::PushAck& ack) EXCLUDES(mu_);
  Result<std::shared_ptr<Connection>> Peer(const std::string& address) EXCLUDES(mu_);
  void Finish(const Status& status) EXCLUDES(mu_);

  template <typename M>
  void ToMaster(const M& m) EXCLUDES(mu_) {
    std::shared_ptr<Connection> control;
    {
      MutexLock lock(&mu_);
      control = control_;
    }
    if (!control) return;
    Status sent = SendMessage(*control, m);
    if (!sent.ok()) log_->warn("cannot report to the master: {}", sent.ToString());
  }
  // Reports a failure to the master; with a job, only if it is still in `generation`.
  void ReportFailure(msg::TaskFailed failed, const Status& cause, WorkerJob* job = nullptr,
                     uint64_t generation = 0) EXCLUDES(mu_);
  // Sends a task's report unless the job has been restarted since the task was handed out.
  template <typename M>
  void ReportTask(WorkerJob* job, uint64_t generation, const M& m) {
    if (!job) return;  // the job is over
    MutexLock lock(&job->report_mu);
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

  std::shared_ptr<WorkerJob> FindJob(uint64_t id) EXCLUDES(mu_);
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
  // Stops a map task's pushes (a failed send, no acknowledgement in time) and gives their bytes
  // back; returns `why` the first time, Ok once the task has already finished.
  Status GiveUpPushes(PendingPushes& pending, const Status& why);
  // The pushes of a map task: kept from an earlier run of (step, partition) when there is one,
  // else computed (and kept). `stats` gets the task's statistics.
  Result<std::vector<GatherPayload>> MapOutputFor(WorkerJob& job, const TrainingParts& parts,
                                                  const msg::RunMapTask& task, api::MapStats* stats,
                                                  bool* replayed);
  // Partition `partition` of a map task's node, as a one-partition task would compute it.
  Result<MapTaskOutput> MapPartition(WorkerJob& job, const TrainingParts& parts,
                                     const msg::RunMapTask& task, int64_t partition,
                                     const ModelState& params);
  // Calls fn(0 .. n-1) on this thread and on up to slots - 1 more compute threads; returns once
  // every call has. fn must not fail by throwing.
  void RunSpread(int64_t n, const std::function<void(int64_t)>& fn);
  Status Evaluate(const msg::EvaluateTask& task, msg::EvalDone* done);
  // Scores a partition of a predict job into its part file under the job's output.dir.
  Status Predict(const msg::PredictTask& task, msg::PredictDone* done);
  Result<Params> ParamsAfter(WorkerJob& job, const TrainingParts& parts, int64_t updates);
  Result<Params> Pull(WorkerJob& job, const TrainingParts& parts, int64_t updates);
  // Pulls row keys `keys` (ascending, distinct) of row-sparse tensors after `updates` updates
  // from the shard hosts that own them into `out`, in requests of at most kRowsPerPull keys.
  Status PullRows(WorkerJob& job, const TrainingParts& parts, int64_t updates,
                  const std::vector<ParamKey>& keys, PulledRows* out);
  // The RowFetcher of a task that reads the parameters after `updates` updates.
  RowFetcher RowsAfter(WorkerJob& job, const TrainingParts& parts, int64_t updates);

  // ---- Hosted shards ----
  Result<ShardRef> Shard(uint64_t job_id, int64_t shard);
  // `payload_crc32c`: the payload's checksum as the transport checked it (delivered_crc32c()),
  // from which the run's values_crc32c is checked without reading the floats again.
  void AcceptPush(const std::shared_ptr<Connection>& from, std::string payload,
                  std::optional<uint32_t> payload_crc32c);
  // A push handed over in memory (in-process): not encoded, so its floats are checksummed here.
  void AcceptPush(const std::shared_ptr<Connection>& from,
                  std::shared_ptr<const msg::PushRun> handed);
  // Stores a run whose floats have the CRC32C `values_crc32c` (it must match the push's) and
  // acknowledges it.
  void StorePush(const std::shared_ptr<Connection>& from, msg::PushRun push,
                 uint32_t values_crc32c);
  // Stores the run as StorePush does and returns its acknowledgement. `from` names the pusher
  // in logs.
  msg::PushAck StoreRun(msg::PushRun push, uint32_t values_crc32c, const std::string& from);
  // A map task's push to a shard this worker hosts: stored and acknowledged here, on the task's
  // thread, without a connection, encoding or a transport thread in between (a worker's own
  // shard was reached over loopback TCP before: half the bytes of a 2-worker round).
  void PushToOwnShard(GatherPayload payload);
  // The answer to `pull`: `out` (its error, or the step) and the parameters in `params`.
  void AnswerPull(const msg::PullParams& pull, msg::ParamsReply* out,
                  std::shared_ptr<const shuffle::Run>* params);
  // Whether the `pull-before-reply` failpoint drops the reply of a pull from `shard`.
  bool DropPullReply(int64_t shard) const;
  // A pull from a shard this worker hosts, answered in place (see PushToOwnShard).
  Result<msg::ParamsReply> PullOwnShard(uint64_t job_id, int64_t shard, int64_t updates);
  void ServePull(const std::shared_ptr<Connection>& from, const msg::PullParams& pull);
  // Sends one reply to a pull (`payload`, encoded from `reply`); when that fails for any reason
  // but a closed connection, sends an error reply saying why instead. False when the reply did
  // not go.
  bool SendPullReply(const std::shared_ptr<Connection>& to, const msg::ParamsReply& reply,
                     Result<GatherPayload> payload);
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

  std::string data_address_;  // set by Start

  Mutex mu_;
  std::shared_ptr<Connection> control_ GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<WorkerJob>> jobs_ GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Connection>> peers_ GUARDED_BY(mu_);
  uint64_t next_request_ GUARDED_BY(mu_) = 1;
  // Parameter pulls waiting for their reply, by request id, with the connection they went out
  // on: when it closes they fail at once instead of holding a task slot until the timeout.
  struct PendingPull {
    std::promise<Result<msg::ParamsReply>> reply;
    const Connection* via = nullptr;
    std::optional<msg::ParamsReply> assembled;  // the parts received so far
  };
  std::map<uint64_t, PendingPull> pulls_ GUARDED_BY(mu_);
  std::map<AckKey, std::shared_ptr<PendingPushes>> acks_ GUARDED_BY(mu_);
  std::atomic<int64_t> replayed_tasks_{0};   // map tasks answered from kept output
  std::atomic<int> requested_exit_code_{0};  // from the master's Shutdown
  SendBudget unacked_;  // bytes pushed and not yet acknowledged, across this worker's tasks
  bool finished_ GUARDED_BY(mu_) = false;
  std::promise<Status> finished_promise_;
  std::shared_future<Status> finished_future_ = finished_promise_.get_future().share();
  std::promise<Status> registered_;  // set once, by Welcome or the control connection's end
  bool registered_set_ GUARDED_BY(mu_) = false;
};

}  // namespace mrtrain::runtime
