#include "test/runtime/master/fake_worker.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor/model_layout.h"
#include "engine/tensor/model_state.h"
#include "jobs/spec/job_spec.h"
#include "runtime/checkpoint/shard_file.h"
#include "runtime/job/job_setup.h"
#include "runtime/job/shipped_job.h"
#include "shuffle/partition/partitioner.h"

namespace mrtrain::testing {

namespace msg = runtime::msg;
using runtime::Connection;
using runtime::MessageType;

api::MapStats DefaultMapStats(int64_t partition) {
  return api::MapStats{0.5 * static_cast<double>(partition + 1), 10 + partition, partition};
}

// What the fake knows of one job: enough to write its reducer shards' files.
struct FakeJob {
  jobs::JobSpec spec;
  std::string fingerprint;
  std::shared_ptr<const ModelLayout> layout;  // after StartTraining
  std::unique_ptr<shuffle::Partitioner> partitioner;
  int num_slots = 0;
  int64_t last_step = 0;  // the step of the last ReduceRound
};

class FakeWorker::State : public std::enable_shared_from_this<FakeWorker::State> {
 public:
  State(runtime::Transport* transport, FakeWorkerOptions options)
      : transport_(transport),
        name_(options.name),
        plugin_cache_dir_(options.plugin_cache_dir),
        options_(std::move(options)) {}

  // ---- Any thread ----
  FakeWorkerLog Log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  bool WaitUntil(const std::function<bool(const FakeWorkerLog&)>& done,
                 std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return done(log_); });
  }
  std::shared_ptr<Connection> connection() const {
    std::lock_guard<std::mutex> lock(mu_);
    return connection_;
  }
  void set_map_script(MapScript script) {
    std::lock_guard<std::mutex> lock(mu_);
    map_script_ = std::move(script);
  }
  void set_eval_stats(std::function<api::MapStats(const msg::EvaluateTask&)> stats) {
    std::lock_guard<std::mutex> lock(mu_);
    eval_stats_ = std::move(stats);
  }
  void set_hold_reduce(std::function<bool(const msg::ReduceRound&)> hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_reduce_ = std::move(hold);
  }
  void CommitHeldReduces() {
    std::vector<msg::ReduceRound> held;
    Update([&] { held.swap(log_.held_reduces); });
    for (const msg::ReduceRound& m : held) Commit(m);
  }
  void set_num_cols(int64_t num_cols) {
    std::lock_guard<std::mutex> lock(mu_);
    options_.num_cols = num_cols;
  }
  const std::string& name() const { return name_; }

  void AnswerHeld(const MapScript& script) {
    std::vector<msg::RunMapTask> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(log_.held);
    }
    for (const msg::RunMapTask& t : held) {
      MapReply r = script(t);
      if (r.kind == MapReply::Kind::kHold) {
        Update([&] { log_.held.push_back(t); });
      } else {
        Answer(t, r);
      }
    }
  }

  void Disconnect() {
    std::shared_ptr<Connection> c;
    Update([&] {
      c = connection_;
      log_.unanswered_map_tasks -= static_cast<int>(log_.held.size());
      log_.held.clear();
    });
    if (c) c->Close();
  }

  // ---- Transport thread ----
  void OnConnected(Result<std::shared_ptr<Connection>> connected) {
    if (!connected.ok()) {
      Update([&] { log_.connect_error = connected.status().ToString(); });
      return;
    }
    Update([&] { connection_ = *connected; });
    msg::Hello hello;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hello.worker_name = options_.name;
      hello.slots = options_.slots;
    }
    hello.data_address = "inproc://data-" + name_;
    Send(hello);
  }
  void OnClosed() {
    Update([&] { log_.closed = true; });
  }

  void OnMessage(MessageType type, const std::string& payload) {
    switch (type) {
      case MessageType::kWelcome:
        return Handle<msg::Welcome>(
            payload, [&](const msg::Welcome& m) { Update([&] { log_.worker_id = m.worker_id; }); });
      case MessageType::kJobSpecText:
        return Handle<msg::JobSpecText>(payload, [&](const msg::JobSpecText& m) { OnSpec(m); });
      case MessageType::kLoadPartition:
        return Handle<msg::LoadPartition>(payload, [&](const msg::LoadPartition& m) { OnLoad(m); });
      case MessageType::kStartTraining:
        return Handle<msg::StartTraining>(payload,
                                          [&](const msg::StartTraining& m) { OnStart(m); });
      case MessageType::kRunMapTask:
        return Handle<msg::RunMapTask>(payload, [&](const msg::RunMapTask& m) { OnMap(m); });
      case MessageType::kReduceRound:
        return Handle<msg::ReduceRound>(payload, [&](const msg::ReduceRound& m) { OnReduce(m); });
      case MessageType::kEvaluateTask:
        return Handle<msg::EvaluateTask>(payload,
                                         [&](const msg::EvaluateTask& m) { OnEvaluate(m); });
      case MessageType::kSaveShard:
        return Handle<msg::SaveShard>(payload, [&](const msg::SaveShard& m) { OnSave(m); });
      case MessageType::kEndJob:
        return Handle<msg::EndJob>(payload, [&](const msg::EndJob& m) { OnEndJob(m); });
      default:
        return;  // Shutdown, CheckpointCommitted, ...: nothing to answer
    }
  }

 private:
  template <typename M, typename F>
  void Handle(const std::string& payload, F&& f) {
    auto m = msg::DecodeAs<M>(payload);
    if (!m.ok()) return Problem("cannot decode a message: " + m.status().ToString());
    f(*m);
  }

  // Runs `f` under the lock and wakes waiters.
  template <typename F>
  void Update(F&& f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      f();
    }
    changed_.notify_all();
  }

  void Problem(const std::string& what) {
    Update([&] { log_.problems.push_back(name_ + ": " + what); });
  }

  template <typename M>
  void Send(const M& m) {
    std::shared_ptr<Connection> c = connection();
    if (!c) return;
    Status s = runtime::SendMessage(*c, m);
    // A closed connection is expected after Disconnect(); anything else is the fake's problem.
    if (!s.ok() && s.code() != StatusCode::kUnavailable) Problem("send failed: " + s.ToString());
  }

  void OnSpec(const msg::JobSpecText& m) {
    bool answer = true;
    Update([&] {
      answer = options_.answer_specs;
      if (!answer) log_.specs.push_back(m);
    });
    if (!answer) return;
    auto spec = runtime::UnpackJob(m, plugin_cache_dir_);
    if (!spec.ok()) {
      Problem(spec.status().ToString());
      msg::TaskFailed f;
      f.job_id = m.job_id;
      f.kind = msg::TaskKind::kSetup;
      f.code = spec.status().code();
      f.message = spec.status().message();
      return Send(f);
    }
    msg::JobReady ready;
    ready.job_id = m.job_id;
    ready.phase = msg::JobReady::kSpec;
    ready.train_partitions = spec->train.num_partitions + options_.extra_train_partitions;
    ready.test_partitions = spec->test ? spec->test->num_partitions : 0;
    ready.validation_partitions = spec->validation ? spec->validation->num_partitions : 0;
    Update([&] {
      log_.specs.push_back(m);
      FakeJob& job = jobs_[m.job_id];
      job.fingerprint = spec->Fingerprint();
      job.spec = std::move(*spec);
    });
    Send(ready);
  }

  void OnLoad(const msg::LoadPartition& m) {
    msg::PartitionLoaded loaded;
    Update([&] {
      log_.loads.push_back(m);
      loaded.rows = options_.rows;
      loaded.num_cols = options_.num_cols;
      loaded.max_label = options_.max_label;
    });
    loaded.job_id = m.job_id;
    loaded.set = m.set;
    loaded.partition = m.partition;
    loaded.attempt = m.attempt;
    loaded.labels_integral = 1;
    Send(loaded);
  }

  // Builds the model's layout as every real worker would, so shard files fit the manifest.
  Status BuildModel(const msg::StartTraining& m, FakeJob* job) {
    MRTRAIN_ASSIGN_OR_RETURN(auto plugins, runtime::LoadPlugins(job->spec));
    MRTRAIN_ASSIGN_OR_RETURN(auto mapper, runtime::MakeMapper(job->spec, plugins));
    MRTRAIN_ASSIGN_OR_RETURN(auto rule, runtime::MakeRule(job->spec, plugins));
    api::DataShape shape;
    shape.num_features = m.num_features;
    shape.num_classes = m.num_classes;
    shape.is_sparse = m.is_sparse != 0;
    MRTRAIN_ASSIGN_OR_RETURN(ModelLayout layout, runtime::LayoutFor(*mapper, shape, job->spec));
    job->layout = std::make_shared<const ModelLayout>(std::move(layout));
    job->partitioner = shuffle::MakePartitioner(
        job->spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort ? shuffle::ShuffleMode::kSort
                                                                    : shuffle::ShuffleMode::kHash,
        *job->layout, job->spec.reducers);
    job->num_slots = rule->NumSlots();
    job->last_step = m.step;
    return Status::Ok();
  }

  void OnStart(const msg::StartTraining& m) {
    Status built = NotFoundError("StartTraining for unknown job " + std::to_string(m.job_id));
    Update([&] {
      log_.starts.push_back(m);
      auto it = jobs_.find(m.job_id);
      if (it != jobs_.end()) built = BuildModel(m, &it->second);
    });
    if (!built.ok()) {
      Problem(built.ToString());
      msg::TaskFailed f;
      f.job_id = m.job_id;
      f.kind = msg::TaskKind::kSetup;
      f.round = static_cast<int64_t>(m.placement);
      f.code = built.code();
      f.message = built.message();
      return Send(f);
    }
    msg::JobReady ready;
    ready.job_id = m.job_id;
    ready.phase = msg::JobReady::kTraining;
    ready.placement = m.placement;
    Send(ready);
  }

  void OnMap(const msg::RunMapTask& t) {
    MapScript script;
    Update([&] {
      log_.map_tasks.push_back(t);
      ++log_.unanswered_map_tasks;
      log_.max_unanswered_map_tasks =
          std::max(log_.max_unanswered_map_tasks, log_.unanswered_map_tasks);
      script = map_script_;
    });
    MapReply r = script ? script(t) : MapReply::Done(DefaultMapStats(t.partition));
    if (r.kind == MapReply::Kind::kHold) {
      Update([&] { log_.held.push_back(t); });
    } else if (r.delay.count() > 0) {
      std::weak_ptr<State> weak = shared_from_this();
      transport_->RunAfter(r.delay, [weak, t, r] {
        if (auto self = weak.lock()) self->Answer(t, r);
      });
    } else {
      Answer(t, r);
    }
  }

  // Sends the answer to `t` unless its job has ended or the worker is disconnected.
  void Answer(const msg::RunMapTask& t, const MapReply& r) {
    bool send = false;
    Update([&] {
      log_.unanswered_map_tasks = std::max(0, log_.unanswered_map_tasks - 1);
      send = std::find(log_.ended_jobs.begin(), log_.ended_jobs.end(), t.job_id) ==
             log_.ended_jobs.end();
    });
    if (!send) return;
    if (r.kind == MapReply::Kind::kFail) {
      msg::TaskFailed f;
      f.job_id = t.job_id;
      f.kind = msg::TaskKind::kMap;
      f.epoch = t.epoch;
      f.round = t.round;
      f.partition = t.partition;
      f.partition_count = t.partition_count;
      f.attempt = t.attempt;
      f.set = msg::DataSet::kTrain;
      f.code = r.error.code();
      f.message = r.error.message();
      return Send(f);
    }
    Send(msg::MapTaskDone{t.job_id, t.epoch, t.round, t.partition, t.attempt, r.stats.loss_sum,
                          r.stats.examples, r.stats.correct, 0, r.peak_rss_bytes,
                          t.partition_count});
  }

  void OnReduce(const msg::ReduceRound& m) {
    bool hold = false;
    Update([&] {
      log_.reduces.push_back(m);
      hold = hold_reduce_ && hold_reduce_(m);
      if (hold) log_.held_reduces.push_back(m);
    });
    if (!hold) Commit(m);
  }

  // The shard now holds the parameters after m.step.
  void Commit(const msg::ReduceRound& m) {
    Update([&] {
      auto it = jobs_.find(m.job_id);
      if (it != jobs_.end()) it->second.last_step = m.step;
    });
    Send(msg::ShardCommitted{m.job_id, m.epoch, m.round, m.shard, m.step});
  }

  void OnEvaluate(const msg::EvaluateTask& m) {
    api::MapStats stats = DefaultMapStats(m.partition);
    Update([&] {
      log_.evaluations.push_back(m);
      if (eval_stats_) stats = eval_stats_(m);
    });
    Send(msg::EvalDone{m.job_id, m.set, m.partition, m.attempt, m.step, stats.loss_sum,
                       stats.examples, stats.correct});
  }

  // Writes the shard's file: zeros (and zero slots) for the blocks the shard owns, at the step
  // of the last reduce, as ReducerShard would after training.
  Result<runtime::ShardFileInfo> WriteShard(const msg::SaveShard& m) {
    runtime::ShardFile file;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(m.job_id);
      if (it == jobs_.end() || !it->second.layout) {
        return NotFoundError("SaveShard for job " + std::to_string(m.job_id) +
                             " before StartTraining");
      }
      const FakeJob& job = it->second;
      ModelState state = ModelState::Zeros(job.layout, job.num_slots);
      state.step = job.last_step;
      file = runtime::MakeShardFile(
          state, shuffle::KeysOfShard(*job.partitioner, *job.layout, static_cast<int>(m.shard)),
          m.epochs_done, static_cast<int32_t>(m.shard), job.spec.reducers, job.fingerprint);
    }
    return runtime::WriteShardFile(m.path, file);
  }

  void OnSave(const msg::SaveShard& m) {
    Update([&] { log_.saves.push_back(m); });
    Result<runtime::ShardFileInfo> info = WriteShard(m);
    if (!info.ok()) {
      Problem(info.status().ToString());
      msg::TaskFailed f;
      f.job_id = m.job_id;
      f.kind = msg::TaskKind::kSave;
      f.shard = m.shard;
      f.code = info.status().code();
      f.message = info.status().message();
      return Send(f);
    }
    Send(msg::ShardSaved{m.job_id, m.shard, m.epochs_done, info->bytes, info->crc32c});
  }

  void OnEndJob(const msg::EndJob& m) {
    Update([&] {
      log_.ended_jobs.push_back(m.job_id);
      jobs_.erase(m.job_id);
      auto& held = log_.held;
      const auto removed = std::remove_if(
          held.begin(), held.end(), [&](const msg::RunMapTask& t) { return t.job_id == m.job_id; });
      log_.unanswered_map_tasks -= static_cast<int>(held.end() - removed);
      held.erase(removed, held.end());
    });
  }

  // Constant after construction.
  runtime::Transport* const transport_;
  const std::string name_;
  const std::string plugin_cache_dir_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  FakeWorkerOptions options_;                                 // guarded by mu_ (num_cols changes)
  FakeWorkerLog log_;                                         // guarded by mu_
  std::shared_ptr<Connection> connection_;                    // guarded by mu_
  MapScript map_script_;                                      // guarded by mu_
  std::function<bool(const msg::ReduceRound&)> hold_reduce_;  // guarded by mu_
  std::function<api::MapStats(const msg::EvaluateTask&)> eval_stats_;  // guarded by mu_
  std::map<uint64_t, FakeJob> jobs_;                                   // guarded by mu_
};

FakeWorker::FakeWorker(runtime::Transport* transport, FakeWorkerOptions options)
    : transport_(transport), state_(std::make_shared<State>(transport, std::move(options))) {}

FakeWorker::~FakeWorker() { Disconnect(); }

Result<uint32_t> FakeWorker::Connect(const std::string& master_address,
                                     std::chrono::milliseconds timeout) {
  std::weak_ptr<State> weak = state_;
  runtime::ConnectionHandler handler;
  handler.on_message = [weak](const std::shared_ptr<Connection>&, MessageType type,
                              std::string payload) {
    if (auto state = weak.lock()) state->OnMessage(type, payload);
  };
  handler.on_closed = [weak](const std::shared_ptr<Connection>&, const Status&) {
    if (auto state = weak.lock()) state->OnClosed();
  };
  transport_->Connect(master_address, std::move(handler),
                      [weak](Result<std::shared_ptr<Connection>> connected) {
                        if (auto state = weak.lock()) state->OnConnected(std::move(connected));
                      });
  const bool answered = state_->WaitUntil(
      [](const FakeWorkerLog& log) {
        return log.worker_id != 0 || log.closed || !log.connect_error.empty();
      },
      timeout);
  if (!answered) return DeadlineExceededError(state_->name() + ": no Welcome from the master");
  const FakeWorkerLog log = state_->Log();
  if (log.worker_id == 0) {
    return UnavailableError(
        state_->name() + ": not registered: " +
        (log.connect_error.empty() ? "closed before Welcome" : log.connect_error));
  }
  return log.worker_id;
}

void FakeWorker::set_map_script(MapScript script) { state_->set_map_script(std::move(script)); }

void FakeWorker::set_eval_stats(std::function<api::MapStats(const msg::EvaluateTask&)> stats) {
  state_->set_eval_stats(std::move(stats));
}

void FakeWorker::set_hold_reduce(std::function<bool(const msg::ReduceRound&)> hold) {
  state_->set_hold_reduce(std::move(hold));
}

void FakeWorker::CommitHeldReduces() { state_->CommitHeldReduces(); }

void FakeWorker::set_num_cols(int64_t num_cols) { state_->set_num_cols(num_cols); }

void FakeWorker::AnswerHeld(const MapScript& script) { state_->AnswerHeld(script); }

void FakeWorker::Disconnect() { state_->Disconnect(); }

FakeWorkerLog FakeWorker::log() const { return state_->Log(); }

bool FakeWorker::WaitUntil(const std::function<bool(const FakeWorkerLog&)>& done,
                           std::chrono::milliseconds timeout) const {
  return state_->WaitUntil(done, timeout);
}

std::shared_ptr<Connection> FakeWorker::connection() const { return state_->connection(); }

}  // namespace mrtrain::testing
