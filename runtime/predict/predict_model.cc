#include "runtime/predict/predict_model.h"

#include <fstream>
#include <iterator>
#include <vector>

#include "engine/base/crc32c.h"
#include "engine/models/registry.h"
#include "engine/plugin/plugin_call.h"

namespace mrtrain::runtime {
namespace {

// The model's mapper: built in, or "plugin:NAME" from the given plugin libraries.
Result<std::unique_ptr<api::Mapper>> MakeMapper(const Checkpoint& model,
                                                const plugin::PluginSet& plugins,
                                                const std::string& path) {
  const std::string prefix = "plugin:";
  if (model.model_type.compare(0, prefix.size(), prefix) != 0) {
    return models::CreateBuiltinMapper(model.model_type, model.model_params);
  }
  const std::string name = model.model_type.substr(prefix.size());
  if (plugins.libraries().empty()) {
    return InvalidArgumentError(path + ": the model was trained with plugin mapper '" + name +
                                "'; pass the library with --plugin PATH");
  }
  return plugins.CreateMapper(name, model.model_params);
}

}  // namespace

Result<std::unique_ptr<PredictModel>> LoadPredictModel(const std::string& path,
                                                       const plugin::PluginSet& plugins,
                                                       int threads) {
  auto model = std::make_unique<PredictModel>();
  model->path = path;
  MRTRAIN_ASSIGN_OR_RETURN(model->checkpoint, ReadCheckpointFile(path));
  {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return IOError("cannot read " + path);
    model->file_bytes = bytes.size();
    model->file_crc32c = Crc32c(bytes.data(), bytes.size());
  }
  const Checkpoint& ckpt = model->checkpoint;
  std::vector<std::unique_ptr<api::Mapper>> mappers;
  for (int t = 0; t < threads; ++t) {
    MRTRAIN_ASSIGN_OR_RETURN(auto mapper, MakeMapper(ckpt, plugins, path));
    std::vector<api::TensorSpec> specs;
    const std::string who = plugin::DescribeMapper(*mapper, "model " + ckpt.model_type);
    int outputs = 0;
    Status described = plugin::CallPlugin(who, "DescribeModel", [&] {
      specs = mapper->DescribeModel(ckpt.data_shape);
      outputs = mapper->NumOutputs();
    });
    if (!described.ok()) return described.WithContext(path);
    if (specs.size() != ckpt.state.layout->specs().size()) {
      return CorruptionError(path + ": tensors do not match model type " + ckpt.model_type);
    }
    if (outputs < 1) {
      return PluginError(path + ": " + who + " says NumOutputs() is " + std::to_string(outputs) +
                         "; expected at least 1");
    }
    model->outputs = outputs;
    model->who = who;
    mappers.push_back(std::move(mapper));
  }
  model->mappers = std::make_unique<MapperPool>(std::move(mappers));
  model->rows = std::make_unique<StoredRowSource>(model->checkpoint.state);
  return model;
}

Status ScorePartition(PredictModel& model, int64_t partition, const data::PartitionData& part,
                      PartPredictions* out) {
  const int64_t features = model.checkpoint.data_shape.num_features;
  if (part.num_cols > features || (!part.is_sparse && part.num_cols != features)) {
    return InvalidArgumentError("partition " + std::to_string(partition) + " has " +
                                std::to_string(part.num_cols) +
                                " features; the model was trained on " + std::to_string(features));
  }
  auto mapper = model.mappers->Borrow();
  api::ParamsView params = model.checkpoint.state.View();
  params.rows = model.rows.get();
  return PredictPart(part, features, params, *mapper, model.who, model.outputs, out);
}

}  // namespace mrtrain::runtime
