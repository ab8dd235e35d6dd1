#include "runtime/local/predict_job.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "engine/base/thread_pool.h"
#include "engine/models/registry.h"
#include "engine/plugin/plugin_library.h"
#include "engine/tensor/blas.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/predict/predict_model.h"
#include "runtime/predict/prediction_parts.h"

namespace mrtrain::runtime {
namespace {

Status WriteAtomically(const std::string& path, const std::string& header,
                       const std::vector<PartPredictions>& parts, int64_t* row_counter) {
  const std::string tmp = TempPathFor(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IOError("cannot write " + tmp);
    out << header;
    for (const auto& part : parts) WriteNumberedLines(part, row_counter, out);
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return IOError("cannot write " + tmp);
    }
  }
  MRTRAIN_RETURN_IF_ERROR(FsyncPath(tmp));
  return CommitTempFile(tmp, path);
}

// The parts and then the manifest (the commit point), as the cluster's predict job writes them.
Status WritePredictionFolder(const std::string& dir, const PredictModel& model, bool classifier,
                             const std::vector<PartPredictions>& parts) {
  PredictionManifest manifest;
  manifest.model = {model.path, model.file_bytes, model.file_crc32c};
  manifest.outputs = model.outputs;
  manifest.classifier = classifier;
  MRTRAIN_RETURN_IF_ERROR(RemovePredictionManifest(dir));
  int64_t first_row = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    MRTRAIN_ASSIGN_OR_RETURN(
        PredictionPart written,
        WritePredictionPart(dir, static_cast<int64_t>(p), first_row, model.outputs, parts[p]));
    first_row += written.rows;
    manifest.parts.push_back(std::move(written));
  }
  return WritePredictionManifest(dir, manifest);
}

}  // namespace

Result<PredictSummary> RunPredictJob(const PredictOptions& options) {
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  blas::SetBlasThreads(1);
  MRTRAIN_ASSIGN_OR_RETURN(plugin::PluginSet plugins, plugin::PluginSet::Load(options.plugins));
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<PredictModel> model,
                           LoadPredictModel(options.model_path, plugins, threads));
  MRTRAIN_ASSIGN_OR_RETURN(auto dataset, data::Dataset::Open(options.data));
  const int64_t n = dataset->num_partitions();
  std::vector<PartPredictions> parts(n);
  std::vector<Status> statuses(n);
  ThreadPool pool(threads);
  pool.ParallelFor(n, [&](int64_t p) {
    auto loaded = dataset->LoadPartition(p);
    if (!loaded.ok()) {
      statuses[p] = loaded.status().WithContext("partition " + std::to_string(p));
      return;
    }
    statuses[p] = ScorePartition(*model, p, *loaded, &parts[p]);
  });
  for (const Status& s : statuses) MRTRAIN_RETURN_IF_ERROR(s);

  const std::string header = PredictionHeader(model->outputs);
  int64_t rows = 0;
  if (options.out_dir.empty()) {
    MRTRAIN_RETURN_IF_ERROR(WriteAtomically(options.out_path, header, parts, &rows));
  }
  PredictSummary summary;
  double squared_error = 0;
  for (const auto& part : parts) {
    summary.rows += part.rows;
    summary.correct += part.correct;
    squared_error += part.squared_error;
    summary.skipped_records += part.skipped;
  }
  const Checkpoint& ckpt = model->checkpoint;
  summary.classifier = models::ReportsAccuracy(ckpt.model_type, ckpt.data_shape, summary.correct);
  if (summary.rows > 0) summary.rmse = std::sqrt(squared_error / summary.rows);
  if (!options.out_dir.empty()) {
    MRTRAIN_RETURN_IF_ERROR(
        WritePredictionFolder(options.out_dir, *model, summary.classifier, parts));
  }
  return summary;
}

}  // namespace mrtrain::runtime
