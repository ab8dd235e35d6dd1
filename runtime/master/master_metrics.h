#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/http/prometheus_text.h"
#include "runtime/master/training_loop.h"

namespace mrtrain::runtime {

// What the master counts for its status page and /metrics, by job and by worker: rounds,
// examples, bytes shuffled, map task durations, recoveries, backup attempts, and each job's
// per-epoch report. Counters only grow (Prometheus counters); a job's live figures (epoch,
// round, rate, ETA) follow its observer calls. The last kJobsKept jobs are kept, so a
// long-lived master stays bounded. Not thread-safe: the master calls it under its lock.
class MasterMetrics {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kJobsKept = 100;
  static constexpr size_t kEpochsKept = 10000;  // per job, the newest

  void OnJobStarted(uint64_t job, const std::string& name);
  // A round finished (training_loop.h's OnRound: epoch and round 0-based).
  void OnRound(uint64_t job, int64_t epoch, int64_t round, int64_t rounds_per_epoch, int64_t epochs,
               double elapsed_sec);
  void OnEpoch(uint64_t job, const EpochReport& report);
  // A map task attempt was sent to a worker at `now`.
  void OnMapTaskLaunched(uint64_t job, int64_t task, int attempt, Clock::time_point now);
  // A map task attempt's result was accepted at `now`: its duration from its launch goes into
  // the worker's histogram (one whose launch was not seen counts from its round's start).
  void OnMapTaskDone(uint64_t job, const std::string& worker, int64_t task, int attempt,
                     Clock::time_point now, int64_t examples, int64_t bytes_shuffled);
  void OnBackupAttempt(uint64_t job, const std::string& worker);
  void OnRecovery(uint64_t job);

  // Adds the job's live figures to its entry of the status JSON (nothing for a job it has no
  // figures of): epoch (1-based, the one running or last done), round, rounds_per_epoch,
  // examples_per_sec, elapsed_sec, eta_sec, recoveries, backup_attempts, examples,
  // bytes_shuffled and the last epoch's losses and accuracies.
  void AddJobStatus(uint64_t job, nlohmann::json* entry) const;
  // {"job": id, "name": ..., "epochs": [the epochs' reports as in metrics.jsonl]}; nullopt for
  // a job it does not know.
  std::optional<nlohmann::json> History(uint64_t job) const;
  // The per-job and per-worker families (labels job, worker).
  void WritePrometheus(PrometheusText* out) const;

  // The task-duration histogram's upper bounds, in seconds.
  static const std::vector<double>& DurationBounds();

 private:
  struct WorkerCounters {
    int64_t tasks = 0;
    int64_t examples = 0;
    int64_t bytes_shuffled = 0;
    int64_t backup_attempts = 0;
    std::vector<int64_t> duration_counts;  // DurationBounds().size() + 1
    double duration_sum = 0;
  };
  struct Job {
    std::string name;
    int64_t epoch = 0;  // 1-based epoch of the latest round
    int64_t round = 0;  // 1-based, within it
    int64_t rounds_per_epoch = 0;
    int64_t epochs = 0;
    int64_t rounds = 0;  // rounds run (replays after a recovery included)
    double elapsed_sec = 0;
    double eta_sec = 0;
    int64_t recoveries = 0;
    std::map<std::string, WorkerCounters> workers;
    std::vector<nlohmann::json> history;
    // (map task, attempt) -> launch time, of the attempts of the running round
    std::map<std::pair<int64_t, int>, Clock::time_point> launched;
    Clock::time_point round_start;  // of the running round
  };
  Job* Find(uint64_t job);
  const Job* Find(uint64_t job) const;

  std::map<uint64_t, Job> jobs_;
};

}  // namespace mrtrain::runtime
