// The master's side of a predict job (mrtrain predict --master): a map-only job whose tasks
// score data.train's partitions into part files where they were loaded; the master writes the
// manifest once every part is in. It never reads the model: the workers do, and report the
// file's size and CRC32C, which must agree.
#include <cmath>

#include "runtime/master/master_impl.h"
#include "runtime/predict/prediction_parts.h"

namespace mrtrain::runtime {

Result<TrainingResult> MasterService::Impl::Predict(const QueuedJob& queued,
                                                    const jobs::JobSpec& spec) {
  MRTRAIN_RETURN_IF_ERROR(RemovePredictionManifest(spec.output_dir));
  MRTRAIN_RETURN_IF_ERROR(SetUpWorkers(queued));
  // Loading places the partitions (and counts their rows, which number the parts' rows); each
  // is then scored where it was loaded, or elsewhere when its worker is lost.
  std::vector<PartitionSummary> loaded;
  MRTRAIN_RETURN_IF_ERROR(LoadSet(msg::DataSet::kTrain, spec, &loaded));
  const uint64_t job = queued.id;
  std::vector<int64_t> first_rows;
  {
    Locked lock(this);
    first_rows = first_rows_[0];
  }
  Step step;
  step.kind = Step::Kind::kPredict;
  step.what = "predicting data.train";
  step.predicted.resize(loaded.size());
  step.launch_task = [this, job, &first_rows](const WorkerEntry& w, int64_t p, int attempt) {
    mu_.AssertHeld();  // launch functions run under the lock
    return QueueLocked(w.connection, msg::PredictTask{job, p, attempt, first_rows[p]});
  };
  MRTRAIN_RETURN_IF_ERROR(RunTasks(msg::DataSet::kTrain, 0, step));

  PredictionManifest manifest;
  manifest.model.path = spec.predict_model;
  PredictTotals totals;
  double squared_error = 0;
  for (size_t p = 0; p < step.predicted.size(); ++p) {
    const msg::PredictDone& d = step.predicted[p];
    if (p == 0) {
      manifest.model.bytes = d.model_bytes;
      manifest.model.crc32c = d.model_crc32c;
      manifest.outputs = d.outputs;
    } else if (d.model_bytes != manifest.model.bytes || d.model_crc32c != manifest.model.crc32c) {
      return FailedPreconditionError(
          "the workers read different model files under " + spec.predict_model + " (" +
          std::to_string(manifest.model.bytes) + " bytes with CRC32C " +
          std::to_string(manifest.model.crc32c) + " for partition 0, " +
          std::to_string(d.model_bytes) + " bytes with CRC32C " + std::to_string(d.model_crc32c) +
          " for partition " + std::to_string(p) + "): every worker must see the same file");
    }
    manifest.classifier |= d.classifier != 0;
    PredictionPart part;
    part.partition = static_cast<int64_t>(p);
    part.file = PredictionPartName(part.partition);
    part.first_row = first_rows[p];
    part.rows = d.rows;
    part.bytes = d.bytes;
    part.crc32c = d.crc32c;
    part.correct = d.correct;
    part.squared_error = d.squared_error;
    part.skipped = d.skipped_records;
    manifest.parts.push_back(part);
    totals.rows += d.rows;
    totals.correct += d.correct;
    totals.skipped_records += d.skipped_records;
    squared_error += d.squared_error;
  }
  MRTRAIN_RETURN_IF_ERROR(WritePredictionManifest(spec.output_dir, manifest));
  totals.classifier = manifest.classifier;
  if (totals.rows > 0) totals.rmse = std::sqrt(squared_error / totals.rows);
  totals.out_dir = spec.output_dir;
  TrainingResult result;
  result.predicted = totals;
  return result;
}

}  // namespace mrtrain::runtime
