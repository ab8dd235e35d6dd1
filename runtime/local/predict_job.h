#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::runtime {

struct PredictOptions {
  std::string model_path;  // a checkpoint or the final model.mrt of a job
  data::DatasetSpec data;  // the rows to predict; labels are carried into the output
  std::string out_path;    // CSV: row,label,prediction,score_0,...
  // When set, instead of out_path: a folder of one part file per partition plus manifest.json
  // (runtime/predict/prediction_parts.h), as the cluster's predict job writes it.
  std::string out_dir;
  int threads = 0;  // 0 = the number of cores
  // Plugin libraries to look the model's mapper up in, for a model trained with model.plugin
  // (its checkpoint records model type "plugin:NAME"; the library itself is not stored).
  std::vector<std::string> plugins;
};

struct PredictSummary {
  int64_t rows = 0;
  bool classifier = false;  // the model predicts class indices (models::ReportsAccuracy)
  int64_t correct = 0;      // predictions equal to the label (meaningful for classifiers only)
  double rmse = 0;          // root mean squared prediction - label (for regressions)
  int64_t skipped_records = 0;
};

// Batch inference as a map-only job: each partition's rows go through the model's Predict, and
// the partitions' CSV parts are written in partition order, atomically (temp file, rename), to
// out_path, or as part files and a manifest to out_dir.
// kPluginError, naming the mapper (and its plugin and library), when it throws.
Result<PredictSummary> RunPredictJob(const PredictOptions& options);

}  // namespace mrtrain::runtime
