#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/api/hyperparameters.h"
#include "engine/api/views.h"
#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/master/round_executor.h"

namespace mrtrain::runtime {

// What a checkpoint must record besides tensors so that predict and resume can rebuild the job.
struct JobMetadata {
  std::string fingerprint;
  std::string model_type;
  api::Hyperparameters model_params;
  api::DataShape data_shape;
  std::string update_rule;
  int64_t skipped_records = 0;  // bad records skipped while loading (on_bad_record: skip)
};

// The figures of one finished epoch, as printed and written to metrics.jsonl.
struct EpochReport {
  int64_t epoch = 0;  // 1-based
  int64_t epochs = 0;
  int64_t examples = 0;
  double train_loss = 0;
  // Accuracies only for classifiers (models::ReportsAccuracy): a regression has none.
  std::optional<double> train_accuracy;
  std::optional<double> test_loss, test_accuracy;
  std::optional<double> validation_loss, validation_accuracy;
  double learning_rate = 0;  // at the epoch's last round
  double examples_per_sec = 0;
  double train_sec = 0;  // the epoch's rounds only (no evaluation or checkpoint)
  double epoch_sec = 0;
  double elapsed_sec = 0;  // since this run started (a resumed run counts from its start)
  double eta_sec = 0;
  int64_t skipped_records = 0;
  // In metrics.jsonl as master_peak_rss_bytes, worker_peak_rss_bytes ({name: bytes}) and
  // max_worker_peak_rss_bytes; absent when unknown (and in lines of earlier versions).
  JobPeakRss peak_rss;

  // One JSON object on one line (no trailing newline).
  std::string ToJson() const;
  // Reads what ToJson wrote (how a submit client gets the master's reports). kCorruption for
  // anything else.
  static Result<EpochReport> FromJson(const std::string& json);
  // "epoch 3/10 train_loss=0.4123 ... test_accuracy=0.8512 examples/s=... elapsed=2.1s eta=4.9s"
  std::string ToLine() const;
};

// "master 23 MiB, worker 1 (host:pid) 180 MiB" (local mode: "master and workers (one
// process) 40 MiB"), for the log.
std::string PeakRssText(const JobPeakRss& peak);

// Receives progress. Called on the thread running the loop.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual void OnRound(int64_t epoch, int64_t round, int64_t rounds_per_epoch, int64_t total_epochs,
                       double elapsed_sec) {}
  virtual void OnEpoch(const EpochReport& report) {}
};

// What a predict job (JobSpec::predict_model) wrote, for its submitter's summary line.
struct PredictTotals {
  std::string out_dir;
  int64_t rows = 0;
  int64_t correct = 0;
  bool classifier = false;
  double rmse = 0;
  int64_t skipped_records = 0;
};

// "predicted 2000 rows into OUT (accuracy against the data's labels: 0.9000)": the line local
// and cluster predict print. Accuracy means something for class predictions only (a
// regression's are never exactly equal); a regression gets its root mean squared error.
std::string DescribePredicted(const PredictTotals& p);

struct TrainingResult {
  std::optional<PredictTotals> predicted;  // set by a predict job instead of what follows
  std::optional<EpochReport> last;         // empty when no epoch ran (resumed a finished job)
  std::string model_path;                  // output_dir/model.mrt
  std::string npz_path;                    // output_dir/model.npz
};

// Runs epochs [start_epoch, spec.epochs) on `executor`: the learning-rate schedule, the rounds,
// evaluation after each epoch, metrics.jsonl, checkpoints (atomic, keep the last K) and, at
// the end, the final model as output_dir/model.mrt and model.npz. A resumed run (start_epoch
// > 0) keeps the metrics lines of earlier epochs and drops any later ones.
Result<TrainingResult> RunTrainingLoop(const jobs::JobSpec& spec, const JobMetadata& metadata,
                                       RoundExecutor& executor, int64_t start_epoch,
                                       TrainingObserver* observer);

}  // namespace mrtrain::runtime
