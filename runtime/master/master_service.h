#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/base/status.h"
#include "runtime/master/training_loop.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/transport.h"

namespace mrtrain::runtime {

struct MasterOptions {
  std::string listen_address;  // "host:port" (port 0 picks one) or "inproc://"
  // A job starts once this many workers have registered (all that are there then take part),
  // and fails if they have not within worker_wait.
  int min_workers = 1;
  std::chrono::milliseconds worker_wait{60000};
  // The bound on each step of a job (a round's map tasks, its reduces, an evaluation, a save):
  // past it the job fails naming what it still waits for.
  std::chrono::milliseconds step_timeout{600000};
  // Workers send a heartbeat every heartbeat_interval; one from which nothing has come for
  // heartbeat_timeout is declared lost (its connection closed, its tasks re-run elsewhere).
  // A zero timeout turns the check off.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Speculation: a task whose attempt has run longer than speculation_multiple times the median
  // of its round's finished tasks, and at least speculation_min, gets a backup attempt on
  // another worker; the first to finish wins. Checked every speculation_interval, which is
  // also the resolution task durations are measured with. A zero multiple turns it off.
  double speculation_multiple = 2.0;
  std::chrono::milliseconds speculation_min{200};
  std::chrono::milliseconds speculation_interval{20};
  // Where the master records its unfinished jobs (JobJournal); "" = nowhere. With `recover`,
  // Start() first queues the jobs recorded there: a running one resumes from its newest
  // checkpoint, with the same final model.
  std::string state_dir;
  bool recover = false;
  // Where shipped plugin libraries are kept; "" = DefaultPluginCacheDir().
  std::string plugin_cache_dir;
  // The workers run in the master's process (local mode): the job's peak memory is reported
  // once, as the master's, not again for each worker.
  bool workers_in_process = false;
  // Partitions per map task, rounded down to a power of two: each task is a node of the
  // partitions' reduction tree, and its worker pushes one combined run per reducer shard.
  // 0 picks shuffle::NodeCountFor(partitions, workers at the job's start): about one task
  // per worker. The model is the same for any value.
  int64_t map_node_partitions = 0;
};

// A job's progress as its submitter sees it: the training loop's observer calls, then
// OnFinished once. Called on the master's job thread, one job at a time.
class JobListener : public TrainingObserver {
 public:
  // `result` is set when status is OK.
  virtual void OnFinished(const Status& status, const TrainingResult* result) {}
};

// The master: the control plane of a cluster. Workers register with it; it runs the submitted
// jobs one after another on the workers that are connected when a job starts: sets the job up
// on them, has them load the partitions (a partition's tasks then stay on the worker that cached
// it), fixes the data's shape, places the reducer shards, and drives the training loop round by
// round (map tasks in waves over the workers' slots, then the shards' reduces), evaluations and
// checkpoints (shards write their files, the master commits the manifest). Only task-sized
// messages pass through it: gradients and parameters go worker to worker.
//
// Submit and status clients connect to the same address: a JobSpecText queues a job (the
// connection then streams RoundProgress, EpochReport and a final JobStatus; closing it cancels
// the job), a StatusRequest gets one JobStatus with the workers and jobs as JSON.
class MasterService {
 public:
  // `transport` must outlive the service (in local mode the workers share it).
  MasterService(Transport* transport, MasterOptions options);
  ~MasterService();
  MasterService(const MasterService&) = delete;
  MasterService& operator=(const MasterService&) = delete;

  // Listens and starts the job thread. Returns the bound address.
  Result<std::string> Start();

  // Queues a job; `listener` follows it. Thread-safe. Returns the job's id.
  uint64_t Submit(msg::JobSpecText job, std::shared_ptr<JobListener> listener);

  // Cancels a queued or running job: it fails with kAborted. Thread-safe; unknown ids are ignored.
  void Cancel(uint64_t job_id);

  // Workers and jobs as one JSON object (what `mrtrain status` prints): workers with their
  // slots, heartbeat age and current tasks; jobs with their state and live figures (epoch,
  // round, examples/s, ETA, recoveries, backup attempts; see MasterMetrics::AddJobStatus).
  // Thread-safe, like HistoryJson and MetricsText: they copy state under the master's lock.
  std::string StatusJson() const;
  // One job's per-epoch reports as JSON (MasterMetrics::History); nullopt for a job the master
  // no longer (or never) knew.
  std::optional<std::string> HistoryJson(uint64_t job_id) const;
  // The master's counters in the Prometheus text exposition format (version 0.0.4).
  std::string MetricsText() const;

  // Payload bytes of the control-plane messages the master has sent and received since it
  // started: the figure that must not grow with the model's size.
  int64_t control_bytes() const;

  // Fails the running job, tells the workers to shut down (when `shutdown_workers`, asking them
  // to exit with `exit_code`), closes every connection and joins the job thread. Idempotent.
  void Stop(bool shutdown_workers = false, int exit_code = 0);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mrtrain::runtime
