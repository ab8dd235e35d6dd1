#include "runtime/local/predict_job.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "engine/base/thread_pool.h"
#include "engine/models/registry.h"
#include "engine/plugin/plugin_call.h"
#include "engine/plugin/plugin_library.h"
#include "engine/tensor/blas.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/predict/prediction_parts.h"
#include "runtime/worker/mapper_pool.h"

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

// The model's mapper: built in, or "plugin:NAME" from the given plugin libraries.
Result<std::unique_ptr<api::Mapper>> MakeMapper(const Checkpoint& model,
                                                const plugin::PluginSet& plugins,
                                                const PredictOptions& options) {
  const std::string prefix = "plugin:";
  if (model.model_type.compare(0, prefix.size(), prefix) != 0) {
    return models::CreateBuiltinMapper(model.model_type, model.model_params);
  }
  const std::string name = model.model_type.substr(prefix.size());
  if (plugins.libraries().empty()) {
    return InvalidArgumentError(options.model_path +
                                ": the model was trained with plugin mapper '" + name +
                                "'; pass the library with --plugin PATH");
  }
  return plugins.CreateMapper(name, model.model_params);
}

// The parts and then the manifest (the commit point), as the cluster's predict job writes them.
Status WritePredictionFolder(const PredictOptions& options, const Checkpoint& model, int outputs,
                             bool classifier, const std::vector<PartPredictions>& parts) {
  PredictionManifest manifest;
  MRTRAIN_ASSIGN_OR_RETURN(manifest.model, IdentifyModelFile(options.model_path));
  manifest.model.model_type = model.model_type;
  manifest.model.fingerprint = model.fingerprint;
  manifest.model.epochs_done = model.epochs_done;
  manifest.outputs = outputs;
  manifest.classifier = classifier;
  int64_t first_row = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    MRTRAIN_ASSIGN_OR_RETURN(PredictionPart written,
                             WritePredictionPart(options.out_dir, static_cast<int64_t>(p),
                                                 first_row, outputs, parts[p]));
    first_row += written.rows;
    manifest.parts.push_back(std::move(written));
  }
  return WritePredictionManifest(options.out_dir, manifest);
}

}  // namespace

Result<PredictSummary> RunPredictJob(const PredictOptions& options) {
  MRTRAIN_ASSIGN_OR_RETURN(Checkpoint model, ReadCheckpointFile(options.model_path));
  MRTRAIN_ASSIGN_OR_RETURN(auto dataset, data::Dataset::Open(options.data));
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  blas::SetBlasThreads(1);
  MRTRAIN_ASSIGN_OR_RETURN(plugin::PluginSet plugins, plugin::PluginSet::Load(options.plugins));
  std::vector<std::unique_ptr<api::Mapper>> mappers;
  int outputs = 0;
  for (int t = 0; t < threads; ++t) {
    MRTRAIN_ASSIGN_OR_RETURN(auto mapper, MakeMapper(model, plugins, options));
    std::vector<api::TensorSpec> specs;
    const std::string who = plugin::DescribeMapper(*mapper, "model " + model.model_type);
    Status described = plugin::CallPlugin(who, "DescribeModel", [&] {
      specs = mapper->DescribeModel(model.data_shape);
      outputs = mapper->NumOutputs();
    });
    if (!described.ok()) return described.WithContext(options.model_path);
    if (specs.size() != model.state.layout->specs().size()) {
      return CorruptionError(options.model_path + ": tensors do not match model type " +
                             model.model_type);
    }
    if (outputs < 1) {
      return PluginError(options.model_path + ": " + who + " says NumOutputs() is " +
                         std::to_string(outputs) + "; expected at least 1");
    }
    mappers.push_back(std::move(mapper));
  }
  const int64_t n = dataset->num_partitions();
  std::vector<PartPredictions> parts(n);
  std::vector<Status> statuses(n);
  const api::ParamsView params = model.state.View();
  const int64_t features = model.data_shape.num_features;
  const std::string who = plugin::DescribeMapper(*mappers[0], "model " + model.model_type);
  MapperPool pool_of_mappers(std::move(mappers));
  ThreadPool pool(threads);
  pool.ParallelFor(n, [&](int64_t p) {
    auto loaded = dataset->LoadPartition(p);
    if (!loaded.ok()) {
      statuses[p] = loaded.status().WithContext("partition " + std::to_string(p));
      return;
    }
    if (loaded->num_cols > features || (!loaded->is_sparse && loaded->num_cols != features)) {
      statuses[p] = InvalidArgumentError(
          "partition " + std::to_string(p) + " has " + std::to_string(loaded->num_cols) +
          " features; the model was trained on " + std::to_string(features));
      return;
    }
    auto mapper = pool_of_mappers.Borrow();
    statuses[p] = PredictPart(*loaded, features, params, *mapper, who, outputs, &parts[p]);
  });
  for (const Status& s : statuses) MRTRAIN_RETURN_IF_ERROR(s);

  const std::string header = PredictionHeader(outputs);
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
  summary.classifier = models::ReportsAccuracy(model.model_type, model.data_shape, summary.correct);
  if (summary.rows > 0) summary.rmse = std::sqrt(squared_error / summary.rows);
  if (!options.out_dir.empty()) {
    MRTRAIN_RETURN_IF_ERROR(
        WritePredictionFolder(options, model, outputs, summary.classifier, parts));
  }
  return summary;
}

}  // namespace mrtrain::runtime
