#include "jobs/spec/spec_limits.h"

#include <algorithm>
#include <vector>

#include "engine/models/row_weights.h"
#include "engine/tensor/model_layout.h"

namespace mrtrain::jobs {
namespace {

// At least how many parameters a model of this type has; double, as hidden widths may be
// near 2^63 and only the comparison with the limit matters.
double MinParams(const std::string& type, const std::vector<int64_t>& hidden, double features,
                 double classes, double factors) {
  if (type == "linear" || type == "logistic") return features + 1;
  if (type == "fm") return features * (factors + 1) + 1;
  if (type == "softmax") return (features + 1) * classes;
  double total = 0;
  double in = features;
  for (int64_t width : hidden) {
    total += (in + 1) * static_cast<double>(width);
    in = static_cast<double>(width);
  }
  return total + (in + 1) * classes;
}

// An mlp keeps each layer's outputs and deltas for one chunk of rows: reported at model.hidden
// when they alone would pass the model's own limit.
void CheckActivations(SpecMap* model, const std::vector<int64_t>& hidden, double classes,
                      int64_t chunk_rows) {
  double widths = classes;
  for (int64_t width : hidden) widths += 2 * static_cast<double>(width);
  const double floats = widths * static_cast<double>(chunk_rows);
  if (floats <= static_cast<double>(kMaxModelParams) || !model->Has("hidden")) return;
  model->Report("hidden", "one chunk of training.chunk_rows " + std::to_string(chunk_rows) +
                              " rows needs at least " + FormatNumber(floats) +
                              " floats of activations, over the limit of " +
                              std::to_string(kMaxModelParams) + " (1 GiB of float32)");
}

}  // namespace

void SetLabelRules(const std::string& model_type, JobSpec* spec) {
  data::LabelKind kind = data::LabelKind::kAny;
  int64_t classes = 0;
  std::string rule;
  if (model_type == "logistic" || model_type == "fm") {
    kind = data::LabelKind::kBinary;
    rule = "model.type is " + model_type;
  } else if (model_type == "softmax" || model_type == "mlp") {
    kind = data::LabelKind::kClass;
    if (spec->model_params.Has("classes")) {
      classes = spec->model_params.GetInt("classes", 0);
      rule = "model.classes is " + std::to_string(classes);
    } else {
      classes = kMaxClasses;
      rule = "model.classes is not set: at most " + std::to_string(kMaxClasses) + " classes";
    }
  }
  for (data::DatasetSpec* ds : {&spec->train, spec->test ? &*spec->test : nullptr,
                                spec->validation ? &*spec->validation : nullptr}) {
    if (ds == nullptr) continue;
    ds->label_kind = kind;
    ds->num_classes = classes;
    ds->label_rule = rule;
  }
}

void CheckModelSize(SpecMap* model, const std::string& model_type, const JobSpec& spec) {
  const std::vector<int64_t> hidden = spec.model_params.GetIntList("hidden");
  if (model_type == "mlp" && hidden.empty()) return;  // already reported
  const bool has_classes = spec.model_params.Has("classes");
  const int64_t width =
      spec.train.hash_bits > 0 ? int64_t{1} << spec.train.hash_bits : spec.train.num_features;
  const double features = static_cast<double>(std::max<int64_t>(1, width));
  const double classes =
      has_classes ? static_cast<double>(spec.model_params.GetInt("classes", 2)) : 2;
  const double factors = static_cast<double>(spec.model_params.GetInt("factors", 1));
  // On wide sparse input the built-in linear models keep their per-feature tensors row-sparse
  // (engine/models/row_weights.h): only the bias is whole.
  const bool sparse_input = spec.train.format == data::DataFormat::kLibsvm ||
                            spec.train.format == data::DataFormat::kCriteo;
  const bool row_sparse =
      sparse_input &&
      features * (model_type == "fm" ? factors + 1 : 1) >=
          static_cast<double>(models::kRowSparseMinParams) &&
      (model_type == "linear" || model_type == "logistic" || model_type == "fm");
  const double params = row_sparse ? 1 : MinParams(model_type, hidden, features, classes, factors);
  if (params <= static_cast<double>(kMaxModelParams)) {
    CheckActivations(model, hidden, classes, spec.chunk_rows);
    return;
  }
  // The key that makes the model this large; data.train.features when no model key does.
  const std::string key = model_type == "mlp"  ? "hidden"
                          : model_type == "fm" ? (model->Has("factors") ? "factors" : "type")
                          : has_classes        ? "classes"
                                               : "type";
  if (!model->Has(key)) return;
  const std::string count =
      params < 9e18 ? std::to_string(static_cast<int64_t>(params)) : FormatNumber(params);
  model->Report(key,
                "the model would have at least " + count + " parameters, over the limit of " +
                    std::to_string(kMaxModelParams) + " (1 GiB of float32)" +
                    (key != "type" ? ""
                     : spec.train.hash_bits > 0
                         ? " with data.train.hash_bits " + std::to_string(spec.train.hash_bits)
                         : " with data.train.features " + std::to_string(spec.train.num_features)));
}

}  // namespace mrtrain::jobs
