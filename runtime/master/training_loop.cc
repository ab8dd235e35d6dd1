#include "runtime/master/training_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "engine/base/duration_text.h"
#include "engine/base/log.h"
#include "engine/base/peak_rss.h"
#include "engine/models/registry.h"
#include "engine/updaters/schedule.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/final_model_writer.h"

namespace mrtrain::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

updaters::LearningRateSchedule ScheduleOf(const jobs::JobSpec& spec) {
  updaters::LearningRateSchedule s;
  s.base = spec.learning_rate;
  s.step_epochs = spec.schedule_step_epochs;
  s.gamma = spec.schedule_gamma;
  s.min_lr = spec.schedule_min_lr;
  switch (spec.schedule) {
    case jobs::JobSpec::Schedule::kConstant:
      s.kind = updaters::LearningRateSchedule::Kind::kConstant;
      break;
    case jobs::JobSpec::Schedule::kStep:
      s.kind = updaters::LearningRateSchedule::Kind::kStep;
      break;
    case jobs::JobSpec::Schedule::kCosine:
      s.kind = updaters::LearningRateSchedule::Kind::kCosine;
      break;
  }
  return s;
}

// Keeps the metrics lines of epochs <= keep_epochs (a resumed run rewrites the rest).
Status TrimMetrics(const std::string& path, int64_t keep_epochs) {
  std::ifstream in(path);
  if (!in) return Status::Ok();
  std::string kept, line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer() &&
        j["epoch"].get<int64_t>() <= keep_epochs) {
      kept += line + "\n";
    }
  }
  in.close();
  // Rewritten atomically: a crash here must not lose the lines of epochs already committed.
  return WriteFileAtomically(path, kept);
}

CheckpointManifest ManifestOf(const JobMetadata& metadata, int64_t epochs_done) {
  CheckpointManifest m;
  m.epochs_done = epochs_done;
  m.fingerprint = metadata.fingerprint;
  m.model_type = metadata.model_type;
  m.model_params = metadata.model_params;
  m.data_shape = metadata.data_shape;
  m.update_rule = metadata.update_rule;
  return m;
}

// What every epoch of one run of the loop shares.
struct LoopContext {
  const jobs::JobSpec& spec;
  const JobMetadata& metadata;
  RoundExecutor& executor;
  TrainingObserver* observer;
  const updaters::LearningRateSchedule schedule;
  CheckpointDir checkpoints;
  const std::string metrics_path;
  const int64_t start_epoch;
  const Clock::time_point run_start = Clock::now();
};

// Runs epoch `epoch` (0-based): its rounds, evaluations and checkpoint, then its metrics line;
// reports it unless it is a replay of an epoch <= `reported`.
Status RunEpoch(LoopContext& loop, int64_t epoch, int64_t reported, TrainingResult* result) {
  const jobs::JobSpec& spec = loop.spec;
  RoundExecutor& executor = loop.executor;
  TrainingObserver* const observer = loop.observer;
  const int64_t rounds = spec.rounds_per_epoch;
  const auto epoch_start = Clock::now();
  api::MapStats train;
  double lr = 0;
  auto request_of = [&](int64_t round) {
    RoundRequest request;
    request.epoch = epoch;
    request.round = round;
    request.step = epoch * rounds + round + 1;
    request.learning_rate = lr =
        updaters::LearningRateAt(loop.schedule, epoch, round, rounds, spec.epochs);
    return request;
  };
  // Adds a round's map statistics to the epoch's.
  auto add = [&](int64_t round, const api::MapStats& stats) -> Status {
    // The shards check the parameters they update; a loss already non-finite at parameters that
    // are still finite (an overflowing plugin, a huge feature) is caught here.
    if (!std::isfinite(stats.loss_sum)) {
      return FailedPreconditionError(
          "epoch " + std::to_string(epoch + 1) + " round " + std::to_string(round + 1) +
          ": the training loss is " + (std::isnan(stats.loss_sum) ? "NaN" : "infinite") +
          "; training diverged: lower update.learning_rate, or check the data for huge values");
    }
    AddStats(stats, &train);
    return Status::Ok();
  };
  auto report_round = [&](int64_t round) {
    if (observer) observer->OnRound(epoch, round, rounds, spec.epochs, Seconds(loop.run_start));
  };
  if (spec.staleness == 0) {
    for (int64_t round = 0; round < rounds; ++round) {
      MRTRAIN_ASSIGN_OR_RETURN(api::MapStats stats, executor.RunRound(request_of(round)));
      MRTRAIN_RETURN_IF_ERROR(add(round, stats));
      report_round(round);
    }
  } else {
    // Staleness s >= 1: the map tasks of round r+1 run while round r is reduced. They read the
    // parameters after update max(k-1-s, E) (JobSpec::MapReadsAfter), already committed when
    // they start. Two rounds in flight, not s+1: the master runs one map step (one round of its
    // task scheduler) at a time, and this already hides a round's reduce and messages behind
    // the next one's computation; a larger s reads older parameters but overlaps no more.
    // The epoch's last reduce runs alone, so evaluation and the checkpoint see it applied.
    std::optional<RoundRequest> reducing;  // the round whose map tasks ran, not reduced yet
    int64_t examples = 0;
    for (int64_t round = 0; round <= rounds; ++round) {
      std::optional<RoundRequest> mapping;
      if (round < rounds) mapping = request_of(round);
      MRTRAIN_ASSIGN_OR_RETURN(api::MapStats stats,
                               executor.RunOverlapped(mapping ? &*mapping : nullptr,
                                                      reducing ? &*reducing : nullptr, examples));
      if (reducing) report_round(reducing->round);
      reducing = mapping;
      if (mapping) {
        MRTRAIN_RETURN_IF_ERROR(add(round, stats));
        examples = stats.examples;
      }
    }
  }
  const double train_sec = Seconds(epoch_start);

  EpochReport report;
  report.epoch = epoch + 1;
  report.epochs = spec.epochs;
  report.examples = train.examples;
  report.train_loss = train.examples ? train.loss_sum / train.examples : 0;
  const bool accuracy =
      models::ReportsAccuracy(loop.metadata.model_type, loop.metadata.data_shape, train.correct);
  if (accuracy) report.train_accuracy = train.examples ? double(train.correct) / train.examples : 0;
  report.learning_rate = lr;
  report.skipped_records = loop.metadata.skipped_records;
  report.peak_rss = executor.PeakRss();
  for (EvalSet set : {EvalSet::kValidation, EvalSet::kTest}) {
    if (!executor.HasEvalSet(set)) continue;
    MRTRAIN_ASSIGN_OR_RETURN(api::MapStats eval, executor.Evaluate(set));
    double loss = eval.examples ? eval.loss_sum / eval.examples : 0;
    double acc = eval.examples ? double(eval.correct) / eval.examples : 0;
    if (set == EvalSet::kTest) {
      report.test_loss = loss;
      if (accuracy) report.test_accuracy = acc;
    } else {
      report.validation_loss = loss;
      if (accuracy) report.validation_accuracy = acc;
    }
  }
  // The last epoch is always checkpointed: the final model is read back from it.
  const bool last_epoch = epoch + 1 == spec.epochs;
  if (last_epoch || (spec.checkpoint_every > 0 && (epoch + 1) % spec.checkpoint_every == 0)) {
    MRTRAIN_RETURN_IF_ERROR(
        executor.SaveCheckpoint(ManifestOf(loop.metadata, epoch + 1), loop.checkpoints));
  }
  report.train_sec = train_sec;
  report.epoch_sec = Seconds(epoch_start);
  report.examples_per_sec = train_sec > 0 ? train.examples / train_sec : 0;
  report.elapsed_sec = Seconds(loop.run_start);
  const int64_t done_here = epoch + 1 - loop.start_epoch;
  report.eta_sec = report.elapsed_sec / done_here * (spec.epochs - epoch - 1);
  {
    std::ofstream out(loop.metrics_path, std::ios::app);
    out << report.ToJson() << "\n";
    if (!out) return IOError("cannot append to " + loop.metrics_path);
  }
  Logger("master")->debug("job {} epoch {}/{} committed", spec.name, epoch + 1, spec.epochs);
  if (observer && epoch + 1 > reported) observer->OnEpoch(report);
  result->last = report;
  return Status::Ok();
}

}  // namespace

std::string PeakRssText(const JobPeakRss& peak) {
  std::string out = peak.workers_in_process ? "master and workers (one process) " : "master ";
  out += peak.master_bytes > 0 ? FormatMiB(peak.master_bytes) : "unknown";
  for (const JobPeakRss::Worker& w : peak.workers) {
    out += ", worker " + std::to_string(w.id) + " (" + w.name + ") " +
           (w.bytes > 0 ? FormatMiB(w.bytes) : "unknown");
  }
  return out;
}

std::string EpochReport::ToJson() const {
  nlohmann::json j;
  j["epoch"] = epoch;
  j["epochs"] = epochs;
  j["examples"] = examples;
  j["train_loss"] = train_loss;
  if (train_accuracy) j["train_accuracy"] = *train_accuracy;
  if (test_loss) j["test_loss"] = *test_loss;
  if (test_accuracy) j["test_accuracy"] = *test_accuracy;
  if (validation_loss) j["validation_loss"] = *validation_loss;
  if (validation_accuracy) j["validation_accuracy"] = *validation_accuracy;
  j["learning_rate"] = learning_rate;
  j["examples_per_sec"] = examples_per_sec;
  j["train_sec"] = train_sec;
  j["epoch_sec"] = epoch_sec;
  j["elapsed_sec"] = elapsed_sec;
  j["eta_sec"] = eta_sec;
  j["skipped_records"] = skipped_records;
  if (peak_rss.master_bytes > 0) j["master_peak_rss_bytes"] = peak_rss.master_bytes;
  if (!peak_rss.workers.empty()) {
    nlohmann::json by_name = nlohmann::json::object();
    int64_t max = 0;
    for (const JobPeakRss::Worker& w : peak_rss.workers) {
      // Two workers given the same --name stay apart.
      const std::string key =
          by_name.contains(w.name) ? w.name + " #" + std::to_string(w.id) : w.name;
      by_name[key] = w.bytes;
      max = std::max(max, w.bytes);
    }
    j["worker_peak_rss_bytes"] = by_name;
    j["max_worker_peak_rss_bytes"] = max;
  }
  return j.dump();
}

Result<EpochReport> EpochReport::FromJson(const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return CorruptionError("not an epoch report: " + json.substr(0, 200));
  EpochReport r;
  try {
    r.epoch = j.at("epoch").get<int64_t>();
    r.epochs = j.at("epochs").get<int64_t>();
    r.examples = j.at("examples").get<int64_t>();
    r.train_loss = j.at("train_loss").get<double>();
    if (j.contains("train_accuracy")) r.train_accuracy = j["train_accuracy"].get<double>();
    if (j.contains("test_loss")) r.test_loss = j["test_loss"].get<double>();
    if (j.contains("test_accuracy")) r.test_accuracy = j["test_accuracy"].get<double>();
    if (j.contains("validation_loss")) r.validation_loss = j["validation_loss"].get<double>();
    if (j.contains("validation_accuracy")) {
      r.validation_accuracy = j["validation_accuracy"].get<double>();
    }
    r.learning_rate = j.at("learning_rate").get<double>();
    r.examples_per_sec = j.at("examples_per_sec").get<double>();
    r.train_sec = j.at("train_sec").get<double>();
    r.epoch_sec = j.at("epoch_sec").get<double>();
    r.elapsed_sec = j.at("elapsed_sec").get<double>();
    r.skipped_records = j.at("skipped_records").get<int64_t>();
    if (j.contains("eta_sec")) r.eta_sec = j["eta_sec"].get<double>();
    if (j.contains("master_peak_rss_bytes")) {
      r.peak_rss.master_bytes = j["master_peak_rss_bytes"].get<int64_t>();
    }
    if (j.contains("worker_peak_rss_bytes")) {
      uint32_t id = 0;  // the master's ids are not in the line: numbered in name order
      for (const auto& [name, bytes] : j["worker_peak_rss_bytes"].items()) {
        r.peak_rss.workers.push_back({++id, name, bytes.get<int64_t>()});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return CorruptionError(std::string("bad epoch report: ") + e.what());
  }
  return r;
}

std::string EpochReport::ToLine() const {
  std::ostringstream os;
  char buf[64];
  os << "epoch " << epoch << "/" << epochs;
  std::snprintf(buf, sizeof buf, " train_loss=%.4f", train_loss);
  os << buf;
  for (const auto& [name, loss, accuracy] :
       {std::tuple("validation", validation_loss, validation_accuracy),
        std::tuple("test", test_loss, test_accuracy)}) {
    if (!loss) continue;
    std::snprintf(buf, sizeof buf, " %s_loss=%.4f", name, *loss);
    os << buf;
    if (!accuracy) continue;
    std::snprintf(buf, sizeof buf, " %s_accuracy=%.4f", name, *accuracy);
    os << buf;
  }
  std::snprintf(buf, sizeof buf, " examples/s=%.0f", examples_per_sec);
  os << buf << " elapsed=" << FormatDuration(elapsed_sec) << " eta=" << FormatDuration(eta_sec);
  if (skipped_records > 0) os << " skipped_records=" << skipped_records;
  return os.str();
}

Result<TrainingResult> RunTrainingLoop(const jobs::JobSpec& spec, const JobMetadata& metadata,
                                       RoundExecutor& executor, int64_t start_epoch,
                                       TrainingObserver* observer) {
  auto log = Logger("master");
  std::error_code ec;
  std::filesystem::create_directories(spec.output_dir, ec);
  if (ec) return IOError("cannot create output.dir '" + spec.output_dir + "': " + ec.message());
  const std::string metrics_path = spec.output_dir + "/metrics.jsonl";
  if (start_epoch > 0) {
    MRTRAIN_RETURN_IF_ERROR(TrimMetrics(metrics_path, start_epoch));
  } else {
    std::ofstream(metrics_path, std::ios::trunc);
  }
  LoopContext loop{spec,
                   metadata,
                   executor,
                   observer,
                   ScheduleOf(spec),
                   CheckpointDir(spec.output_dir + "/checkpoints", spec.checkpoint_keep),
                   metrics_path,
                   start_epoch};
  TrainingResult result;

  // Epochs already reported: after a recovery the loop replays from the last checkpoint, and
  // the replayed epochs (the same numbers again) are not reported twice.
  int64_t reported = start_epoch;
  for (int64_t epoch = start_epoch; epoch < spec.epochs;) {
    Status failed = RunEpoch(loop, epoch, reported, &result);
    if (failed.ok()) {
      reported = std::max(reported, epoch + 1);
      ++epoch;
      continue;
    }
    MRTRAIN_ASSIGN_OR_RETURN(const int64_t restart, executor.Recover(failed));
    log->warn("job {}: {}; carrying on from epoch {} (the last committed checkpoint)", spec.name,
              failed.ToString(), restart);
    MRTRAIN_RETURN_IF_ERROR(TrimMetrics(metrics_path, restart));
    epoch = restart;
  }

  // Streamed from the shards' files, shard file by shard file: the whole model is never in one
  // place (final_model_writer.h).
  result.model_path = spec.output_dir + "/model.mrt";
  result.npz_path = spec.output_dir + "/model.npz";
  MRTRAIN_RETURN_IF_ERROR(
      WriteFinalModel(loop.checkpoints, spec.epochs, result.model_path, result.npz_path));
  return result;
}

std::string DescribePredicted(const PredictTotals& p) {
  std::string line = "predicted " + std::to_string(p.rows) + " rows into " + p.out_dir;
  char buf[96];
  if (p.rows > 0 && p.classifier) {
    std::snprintf(buf, sizeof buf, " (accuracy against the data's labels: %.4f)",
                  double(p.correct) / p.rows);
    line += buf;
  } else if (p.rows > 0) {
    std::snprintf(buf, sizeof buf, " (RMSE against the data's labels: %.4f)", p.rmse);
    line += buf;
  }
  if (p.skipped_records > 0) {
    line += ", skipped " + std::to_string(p.skipped_records) + " bad records";
  }
  return line;
}

}  // namespace mrtrain::runtime
