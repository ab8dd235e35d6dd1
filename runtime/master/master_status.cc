// What the master shows of itself beyond `mrtrain status`: workers' heartbeats and current
// tasks, jobs' histories, and its counters as Prometheus text (the status page's sources).
#include "runtime/http/prometheus_text.h"
#include "runtime/master/master_impl.h"

namespace mrtrain::runtime {
namespace {

const char* KindName(Step::Kind kind) {
  switch (kind) {
    case Step::Kind::kSpec:
      return "setup";
    case Step::Kind::kLoad:
      return "load";
    case Step::Kind::kStart:
      return "start";
    case Step::Kind::kMap:
      return "map";
    case Step::Kind::kReduce:
      return "reduce";
    case Step::Kind::kEvaluate:
      return "evaluate";
    case Step::Kind::kSave:
      return "save";
    case Step::Kind::kPredict:
      return "predict";
  }
  return "?";
}

int64_t HeartbeatAgeMs(const WorkerEntry& w) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               w.heard_at)
      .count();
}

}  // namespace

void MasterService::Impl::AddWorkerStatusLocked(WorkerId id, const WorkerEntry& w,
                                                nlohmann::json* entry) const {
  (*entry)["heartbeat_age_ms"] = HeartbeatAgeMs(w);
  nlohmann::json tasks = nlohmann::json::array();
  for (const TrackedStep* step : tracker_.running()) {
    if (step->finished) continue;
    const std::string kind = KindName(step->kind);
    if (step->scheduler) {
      for (const RunningTask& t : step->scheduler->Running()) {
        if (t.worker != id.ToString()) continue;
        tasks.push_back({{"job", active_job_},
                         {"kind", kind},
                         {"target", "partition " + std::to_string(t.partition)},
                         {"attempt", t.attempt},
                         {"running_ms", clock_ms_ - t.started_ms}});
      }
    }
    const bool per_shard = step->kind == Step::Kind::kReduce || step->kind == Step::Kind::kSave;
    for (const auto& [target, worker] : step->waiting) {
      if (worker != id) continue;
      tasks.push_back({{"job", active_job_},
                       {"kind", kind},
                       {"target", per_shard ? "shard " + std::to_string(target) : "worker"}});
    }
  }
  (*entry)["current_tasks"] = tasks;
}

std::optional<std::string> MasterService::Impl::HistoryJson(uint64_t job_id) const {
  MutexLock lock(&mu_);
  std::optional<nlohmann::json> history = metrics_.History(job_id);
  if (!history) return std::nullopt;
  if (auto it = records_.find(job_id); it != records_.end()) (*history)["state"] = it->second.state;
  return DumpUserJson(*history);
}

std::string MasterService::Impl::MetricsText() const {
  PrometheusText out;
  MutexLock lock(&mu_);
  out.Family("mrtrain_workers", "gauge", "Workers registered with the master.");
  out.Sample("mrtrain_workers", {}, static_cast<double>(workers_.size()));
  out.Family("mrtrain_worker_slots", "gauge", "Task slots of a registered worker.");
  for (const auto& [id, w] : workers_)
    out.Sample("mrtrain_worker_slots", {{"worker", w.name}}, w.slots);
  out.Family("mrtrain_worker_heartbeat_age_seconds", "gauge",
             "Time since the master last heard from a worker.");
  for (const auto& [id, w] : workers_) {
    out.Sample("mrtrain_worker_heartbeat_age_seconds", {{"worker", w.name}},
               static_cast<double>(HeartbeatAgeMs(w)) / 1000);
  }
  std::map<std::string, int> by_state;
  for (const auto& [id, r] : records_) ++by_state[r.state];
  out.Family("mrtrain_jobs", "gauge", "Jobs the master knows, by state.");
  for (const auto& [state, n] : by_state) out.Sample("mrtrain_jobs", {{"state", state}}, n);
  out.Family("mrtrain_dropped_results_total", "counter",
             "Task results dropped: late, duplicate (a backup attempt lost) or of a lost worker.");
  out.Sample("mrtrain_dropped_results_total", {}, static_cast<double>(tracker_.dropped()));
  out.Family("mrtrain_control_bytes_total", "counter",
             "Payload bytes of control messages the master sent and received.");
  out.Sample("mrtrain_control_bytes_total", {}, static_cast<double>(control_bytes_.load()));
  metrics_.WritePrometheus(&out);
  return out.text();
}

}  // namespace mrtrain::runtime
