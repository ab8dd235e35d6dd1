#include "runtime/predict/predict_model.h"

#include <algorithm>
#include <vector>

#include "engine/models/registry.h"
#include "engine/plugin/plugin_call.h"
#include "engine/tensor/param_key.h"
#include "runtime/worker/pulled_rows.h"

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

// The header and the dense tensors of the model file; row-sparse tensors stay in the file.
Status ReadModel(const std::string& path, PredictModel* model) {
  MRTRAIN_ASSIGN_OR_RETURN(model->file, ModelFileReader::Open(path));
  model->checkpoint = model->file->header();
  model->file_bytes = model->file->file_bytes();
  model->file_crc32c = model->file->file_crc32c();
  const ModelLayout& layout = *model->checkpoint.state.layout;
  for (int t = 0; t < layout.num_tensors(); ++t) {
    if (layout.is_row_sparse(t)) continue;
    MRTRAIN_RETURN_IF_ERROR(model->file->ReadDense(t, &model->checkpoint.state.tensors[t]));
  }
  return Status::Ok();
}

// Collects the rows a mapper's NeededRows names, each checked against the layout as training
// checks it (the first bad one is kept).
class NeededRowCollector : public api::RowRequest {
 public:
  explicit NeededRowCollector(const ModelLayout& layout) : layout_(layout) {}

  void Need(int tensor_id, int64_t row) override {
    if (!status_.ok()) return;
    const std::string asked = "NeededRows asked for row " + std::to_string(row) + " of ";
    if (tensor_id < 0 || tensor_id >= layout_.num_tensors()) {
      status_ = InvalidArgumentError(asked + "unknown tensor id " + std::to_string(tensor_id) +
                                     "; the model has " + std::to_string(layout_.num_tensors()) +
                                     " tensors");
      return;
    }
    const std::string tensor =
        "tensor \"" + layout_.specs()[tensor_id].name + "\" (id " + std::to_string(tensor_id) + ")";
    if (!layout_.is_row_sparse(tensor_id)) {
      status_ =
          InvalidArgumentError(asked + tensor + ", which is dense (ParamsView::tensors holds it)");
      return;
    }
    const int64_t rows = layout_.num_blocks(tensor_id);
    if (row < 0 || row >= rows) {
      status_ = InvalidArgumentError(asked + tensor + ", which has rows 0 to " +
                                     std::to_string(rows - 1));
      return;
    }
    keys_.emplace_back(static_cast<uint32_t>(tensor_id), static_cast<uint64_t>(row));
  }

  const Status& status() const { return status_; }
  // The keys named, ascending and distinct.
  std::vector<ParamKey> TakeKeys() {
    std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    return std::move(keys_);
  }

 private:
  const ModelLayout& layout_;
  std::vector<ParamKey> keys_;
  Status status_;
};

// Fills `pulled` with the rows `rows` need, read from the model file.
Status ReadNeededRows(const PredictModel& model, api::Mapper& mapper, int64_t partition,
                      const api::Rows& rows, PulledRows* pulled) {
  const ModelLayout& layout = *model.checkpoint.state.layout;
  const std::string where = "partition " + std::to_string(partition);
  NeededRowCollector collector(layout);
  MRTRAIN_RETURN_IF_ERROR(plugin::CallPlugin(model.who, "NeededRows", [&] {
                            mapper.NeededRows(rows, collector);
                          }).WithContext(where));
  if (!collector.status().ok()) {
    return PluginError(where + ": " + model.who + ": " + collector.status().message());
  }
  *pulled = PulledRows();
  std::vector<float> row(static_cast<size_t>(layout.max_key_length()));
  for (ParamKey key : collector.TakeKeys()) {
    const int tensor = static_cast<int>(key.tensor());
    const int64_t dim = layout.specs()[tensor].row_dim();
    // A row training never updated is not stored: as StoredRows had it, it reads as zeros.
    if (!model.file->FindRow(tensor, static_cast<int64_t>(key.block()), row.data())) {
      std::fill(row.begin(), row.begin() + dim, 0.0f);
    }
    pulled->Add(key, row.data(), dim);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PredictModel>> LoadPredictModel(const std::string& path,
                                                       const plugin::PluginSet& plugins,
                                                       int threads) {
  auto model = std::make_unique<PredictModel>();
  model->path = path;
  MRTRAIN_RETURN_IF_ERROR(ReadModel(path, model.get()));
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
  const api::ParamsView params = model.checkpoint.state.View();
  if (!model.checkpoint.state.layout->has_row_sparse()) {
    return PredictPart(part, features, params, *mapper, model.who, model.outputs, out);
  }
  // This chunk's rows only: memory follows what a chunk touches, not the model.
  PulledRows pulled;
  const RowPreparer prepare = [&](const api::Rows& rows, api::ParamsView* view) {
    MRTRAIN_RETURN_IF_ERROR(ReadNeededRows(model, *mapper, partition, rows, &pulled));
    view->rows = &pulled;
    return Status::Ok();
  };
  return PredictPart(part, features, params, *mapper, model.who, model.outputs, out, prepare);
}

}  // namespace mrtrain::runtime
