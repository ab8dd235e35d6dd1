#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/transport.h"

namespace mrtrain::testing {

// How a fake worker answers one RunMapTask.
struct MapReply {
  enum class Kind {
    kDone,  // MapTaskDone with `stats`
    kFail,  // TaskFailed with `error`
    kHold,  // no answer until AnswerHeld() or the job ends
  };
  Kind kind = Kind::kDone;
  api::MapStats stats;
  Status error;
  // kDone and kFail: answer this long after the task arrived (a timer on the transport thread),
  // so the master can queue more tasks meanwhile and answers can arrive out of partition order.
  std::chrono::milliseconds delay{0};
  int64_t peak_rss_bytes = 0;  // kDone: the worker's peak memory the MapTaskDone reports

  static MapReply Done(api::MapStats stats, std::chrono::milliseconds delay = {}) {
    MapReply r;
    r.stats = stats;
    r.delay = delay;
    return r;
  }
  static MapReply Fail(Status error) {
    MapReply r;
    r.kind = Kind::kFail;
    r.error = std::move(error);
    return r;
  }
  static MapReply Hold() {
    MapReply r;
    r.kind = Kind::kHold;
    return r;
  }
};

using MapScript = std::function<MapReply(const runtime::msg::RunMapTask&)>;

// The statistics a fake worker reports for a partition unless scripted otherwise.
api::MapStats DefaultMapStats(int64_t partition);

struct FakeWorkerOptions {
  std::string name = "fake";
  uint32_t slots = 1;
  // What PartitionLoaded reports for every partition: `rows` dense rows of `num_cols` features
  // with class labels up to `max_label`.
  int64_t rows = 8;
  int64_t num_cols = 4;
  float max_label = 1;
  // Where shipped plugin libraries would be kept (UnpackJob, as WorkerService does).
  std::string plugin_cache_dir;
  // Added to the train partition count JobReady reports: a worker that sees other files.
  int64_t extra_train_partitions = 0;
  // false: a JobSpecText is logged but never answered (a worker hung in its job setup).
  bool answer_specs = true;
};

// Everything a fake worker has seen and done, for assertions.
struct FakeWorkerLog {
  uint32_t worker_id = 0;     // from Welcome; 0 before
  bool closed = false;        // the connection is gone (either side closed it)
  std::string connect_error;  // why Connect failed
  std::vector<runtime::msg::JobSpecText> specs;
  std::vector<runtime::msg::LoadPartition> loads;
  std::vector<runtime::msg::StartTraining> starts;
  std::vector<runtime::msg::RunMapTask> map_tasks;  // every RunMapTask, in arrival order
  std::vector<runtime::msg::RunMapTask> held;       // received with kHold, not answered yet
  int unanswered_map_tasks = 0;                     // received, not yet answered
  int max_unanswered_map_tasks = 0;                 // the most at any time
  std::vector<runtime::msg::ReduceRound> reduces;
  std::vector<runtime::msg::ReduceRound> held_reduces;  // not committed yet (see set_hold_reduce)
  std::vector<runtime::msg::EvaluateTask> evaluations;
  std::vector<runtime::msg::SaveShard> saves;
  std::vector<uint64_t> ended_jobs;
  std::vector<std::string> problems;  // what the fake itself could not do (e.g. write a shard)
};

// A scripted stand-in for WorkerService: connects to a master over a Transport, says Hello and
// answers the master's messages as a worker would, without data or a model. Map tasks are
// answered by a MapScript; partitions are "loaded" with the shape in the options; reduces are
// committed at once unless held; a reducer shard it hosts is saved as a real shard file of zeros in
// the layout the master expects (built from the spec and the shape StartTraining sends), so the
// master can commit and load the checkpoint. Sends no heartbeats.
//
// Thread-safe. Its callbacks run on the transport thread and hold it only weakly, so the
// transport may outlive it.
class FakeWorker {
 public:
  FakeWorker(runtime::Transport* transport, FakeWorkerOptions options);
  ~FakeWorker();  // closes the connection
  FakeWorker(const FakeWorker&) = delete;
  FakeWorker& operator=(const FakeWorker&) = delete;

  // Connects to the master and registers. Returns the worker id from Welcome; kDeadlineExceeded
  // when it does not come within `timeout`, or the connect error.
  Result<uint32_t> Connect(const std::string& master_address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // How later RunMapTasks are answered (default: kDone with DefaultMapStats at once).
  void set_map_script(MapScript script);
  // The EvalDone statistics for a held-out partition (default: DefaultMapStats).
  void set_eval_stats(std::function<api::MapStats(const runtime::msg::EvaluateTask&)> stats);
  // Which later ReduceRounds to hold instead of committing at once (default: none).
  void set_hold_reduce(std::function<bool(const runtime::msg::ReduceRound&)> hold);
  // The width later PartitionLoaded messages report.
  void set_num_cols(int64_t num_cols);

  // Answers every held task by `script` now (from the calling thread), in arrival order;
  // kHold keeps a task held. Delays are ignored.
  void AnswerHeld(const MapScript& script);

  // Commits every held reduce now (from the calling thread).
  void CommitHeldReduces();

  // Sends any message to the master, e.g. a late result.
  template <typename M>
  Status Send(const M& m) {
    std::shared_ptr<runtime::Connection> c = connection();
    if (!c) return UnavailableError("fake worker is not connected");
    return runtime::SendMessage(*c, m);
  }

  // Closes the connection as a crashing worker would (held tasks are forgotten).
  void Disconnect();

  FakeWorkerLog log() const;
  // Waits until `done(log)` holds; false when `timeout` passes first.
  bool WaitUntil(const std::function<bool(const FakeWorkerLog&)>& done,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  class State;

 private:
  std::shared_ptr<runtime::Connection> connection() const;

  runtime::Transport* const transport_;
  const std::shared_ptr<State> state_;
};

}  // namespace mrtrain::testing
