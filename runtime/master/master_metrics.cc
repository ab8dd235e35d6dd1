#include "runtime/master/master_metrics.h"

#include <algorithm>
#include <functional>

namespace mrtrain::runtime {

const std::vector<double>& MasterMetrics::DurationBounds() {
  // Map tasks run from milliseconds (a small partition) to minutes (a large one on a busy host).
  static const std::vector<double> bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,     2.5,  5,     10,   30,  60,   300};
  return bounds;
}

MasterMetrics::Job* MasterMetrics::Find(uint64_t job) {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second;
}

const MasterMetrics::Job* MasterMetrics::Find(uint64_t job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second;
}

void MasterMetrics::OnJobStarted(uint64_t job, const std::string& name) {
  jobs_[job].name = name;
  jobs_[job].round_start = Clock::now();
  while (jobs_.size() > kJobsKept) jobs_.erase(jobs_.begin());  // ids ascend: the oldest
}

void MasterMetrics::OnRound(uint64_t job, int64_t epoch, int64_t round, int64_t rounds_per_epoch,
                            int64_t epochs, double elapsed_sec) {
  Job* j = Find(job);
  if (!j) return;
  j->epoch = epoch + 1;
  j->round = round + 1;
  j->rounds_per_epoch = rounds_per_epoch;
  j->epochs = epochs;
  ++j->rounds;
  j->elapsed_sec = elapsed_sec;
  // The round's attempts still out (losers of a backup race) will be dropped if they answer.
  j->launched.clear();
  j->round_start = Clock::now();
  // The rounds this run has done so far, at their mean pace, for what is left.
  const int64_t left = epochs * rounds_per_epoch - (epoch * rounds_per_epoch + round + 1);
  j->eta_sec = j->rounds > 0 ? elapsed_sec / j->rounds * std::max<int64_t>(0, left) : 0;
}

void MasterMetrics::OnEpoch(uint64_t job, const EpochReport& report) {
  Job* j = Find(job);
  if (!j) return;
  j->epoch = report.epoch;
  j->epochs = report.epochs;
  j->elapsed_sec = report.elapsed_sec;
  j->eta_sec = report.eta_sec;
  // A replay after a recovery reports no epoch twice (the loop reports each once), but a resumed
  // job may start past epoch 1: keep them in order of arrival.
  j->history.push_back(nlohmann::json::parse(report.ToJson()));
  if (j->history.size() > kEpochsKept) j->history.erase(j->history.begin());
}

void MasterMetrics::OnMapTaskLaunched(uint64_t job, int64_t task, int attempt,
                                      Clock::time_point now) {
  if (Job* j = Find(job)) j->launched[{task, attempt}] = now;
}

void MasterMetrics::OnMapTaskDone(uint64_t job, const std::string& worker, int64_t task,
                                  int attempt, Clock::time_point now, int64_t examples,
                                  int64_t bytes_shuffled) {
  Job* j = Find(job);
  if (!j) return;
  auto launched = j->launched.find({task, attempt});
  const Clock::time_point start = launched != j->launched.end() ? launched->second : j->round_start;
  if (launched != j->launched.end()) j->launched.erase(launched);
  const double seconds = std::chrono::duration<double>(now - start).count();
  WorkerCounters& w = j->workers[worker];
  const auto& bounds = DurationBounds();
  if (w.duration_counts.empty()) w.duration_counts.assign(bounds.size() + 1, 0);
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  ++w.duration_counts[bucket];
  w.duration_sum += seconds;
  ++w.tasks;
  w.examples += examples;
  w.bytes_shuffled += bytes_shuffled;
}

void MasterMetrics::OnBackupAttempt(uint64_t job, const std::string& worker) {
  if (Job* j = Find(job)) ++j->workers[worker].backup_attempts;
}

void MasterMetrics::OnRecovery(uint64_t job) {
  if (Job* j = Find(job)) ++j->recoveries;
}

void MasterMetrics::AddJobStatus(uint64_t job, nlohmann::json* entry) const {
  const Job* j = Find(job);
  if (!j) return;
  int64_t examples = 0, bytes = 0, backups = 0;
  for (const auto& [name, w] : j->workers) {
    examples += w.examples;
    bytes += w.bytes_shuffled;
    backups += w.backup_attempts;
  }
  nlohmann::json& e = *entry;
  e["epoch"] = j->epoch;
  e["round"] = j->round;
  e["rounds_per_epoch"] = j->rounds_per_epoch;
  e["rounds"] = j->rounds;
  e["elapsed_sec"] = j->elapsed_sec;
  e["eta_sec"] = j->eta_sec;
  e["recoveries"] = j->recoveries;
  e["backup_attempts"] = backups;
  e["examples"] = examples;
  e["bytes_shuffled"] = bytes;
  if (!j->history.empty()) {
    const nlohmann::json& last = j->history.back();
    e["examples_per_sec"] = last.value("examples_per_sec", 0.0);
    for (const char* key : {"train_loss", "train_accuracy", "test_loss", "test_accuracy"}) {
      if (last.contains(key)) e[key] = last[key];
    }
  } else {
    e["examples_per_sec"] = j->elapsed_sec > 0 ? examples / j->elapsed_sec : 0.0;
  }
}

std::optional<nlohmann::json> MasterMetrics::History(uint64_t job) const {
  const Job* j = Find(job);
  if (!j) return std::nullopt;
  nlohmann::json out = {{"job", job}, {"name", j->name}, {"epochs", j->history}};
  return out;
}

void MasterMetrics::WritePrometheus(PrometheusText* out) const {
  auto job_label = [](uint64_t id) { return PrometheusLabels{{"job", std::to_string(id)}}; };
  auto each_job = [&](const std::string& name, const std::string& type, const std::string& help,
                      const std::function<void(uint64_t, const Job&)>& write) {
    out->Family(name, type, help);
    for (const auto& [id, j] : jobs_) write(id, j);
  };
  auto each_worker = [&](const std::string& name, const std::string& help,
                         int64_t WorkerCounters::*field) {
    each_job(name, "counter", help, [&](uint64_t id, const Job& j) {
      for (const auto& [worker, w] : j.workers) {
        out->Sample(name, {{"job", std::to_string(id)}, {"worker", worker}},
                    static_cast<double>(w.*field));
      }
    });
  };
  each_job("mrtrain_job_info", "gauge", "A job the master ran or runs (1), with its name.",
           [&](uint64_t id, const Job& j) {
             out->Sample("mrtrain_job_info", {{"job", std::to_string(id)}, {"name", j.name}}, 1);
           });
  each_job(
      "mrtrain_job_epoch", "gauge", "The epoch a job runs or last finished (1-based).",
      [&](uint64_t id, const Job& j) { out->Sample("mrtrain_job_epoch", job_label(id), j.epoch); });
  each_job("mrtrain_rounds_total", "counter", "Training rounds run, replays included.",
           [&](uint64_t id, const Job& j) {
             out->Sample("mrtrain_rounds_total", job_label(id), static_cast<double>(j.rounds));
           });
  each_job("mrtrain_recoveries_total", "counter",
           "Recoveries from a lost reducer shard host (shards restored from a checkpoint).",
           [&](uint64_t id, const Job& j) {
             out->Sample("mrtrain_recoveries_total", job_label(id),
                         static_cast<double>(j.recoveries));
           });
  for (const char* key : {"train_loss", "test_loss", "test_accuracy"}) {
    const std::string name = std::string("mrtrain_job_") + key;
    each_job(name, "gauge", std::string("The last finished epoch's ") + key + ".",
             [&](uint64_t id, const Job& j) {
               if (!j.history.empty() && j.history.back().contains(key) &&
                   j.history.back()[key].is_number()) {
                 out->Sample(name, job_label(id), j.history.back()[key].get<double>());
               }
             });
  }
  each_worker("mrtrain_examples_total", "Training examples in accepted map task results.",
              &WorkerCounters::examples);
  each_worker("mrtrain_shuffle_bytes_total",
              "Payload bytes of the runs accepted map tasks pushed to reducer shards.",
              &WorkerCounters::bytes_shuffled);
  each_worker("mrtrain_backup_attempts_total",
              "Speculative backup attempts of slow map tasks started on the worker.",
              &WorkerCounters::backup_attempts);
  each_job("mrtrain_map_task_duration_seconds", "histogram",
           "Map task durations, launch to accepted result, on the master's clock.",
           [&](uint64_t id, const Job& j) {
             for (const auto& [worker, w] : j.workers) {
               if (w.duration_counts.empty()) continue;
               out->Histogram("mrtrain_map_task_duration_seconds",
                              {{"job", std::to_string(id)}, {"worker", worker}}, DurationBounds(),
                              w.duration_counts, w.duration_sum);
             }
           });
}

}  // namespace mrtrain::runtime
