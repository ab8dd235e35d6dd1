#include "engine/models/softmax_model.h"

#include "engine/models/batch_checks.h"
#include "engine/models/softmax_cross_entropy.h"

namespace mrtrain::models {
namespace {

constexpr char kName[] = "softmax";

}  // namespace

std::vector<api::TensorSpec> SoftmaxModel::DescribeModel(const api::DataShape& shape) {
  CheckShape(kName, shape);
  const int64_t k = ResolveClasses(kName, classes_, shape);
  affine_.Resize(shape.num_features, k);
  return {{"W", {shape.num_features, k}, api::TensorSpec::Role::kWeight},
          {"b", {k}, api::TensorSpec::Role::kBias}};
}

void SoftmaxModel::Loss(const api::Rows& rows, const api::ParamsView& params, bool gradient,
                        api::MapStats& stats) {
  CheckRows(kName, rows, affine_.num_inputs(), /*needs_labels=*/true);
  CheckParams(kName, params, 2);
  const int64_t n = rows.num_rows;
  const int64_t k = affine_.num_outputs();
  CheckClassLabels(kName, rows.labels, n, k);
  if (static_cast<int64_t>(z_.size()) < n * k) z_.resize(n * k);
  affine_.Forward(rows, params.tensors[0], params.tensors[1], z_.data());
  SoftmaxCrossEntropy(n, k, rows.labels, gradient, z_.data(), stats);
}

void SoftmaxModel::Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                            const api::ParamsView& params, api::GradientSink& sink,
                            api::MapStats& stats) {
  Loss(rows, params, /*gradient=*/true, stats);
  if (rows.num_rows > 0) affine_.Backward(rows, z_.data(), 0, 1, sink);
}

void SoftmaxModel::Evaluate(const api::Rows& rows, const api::ParamsView& params,
                            api::MapStats& stats) {
  Loss(rows, params, /*gradient=*/false, stats);
}

void SoftmaxModel::Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
                           float* scores) {
  CheckRows(kName, rows, affine_.num_inputs(), /*needs_labels=*/false);
  CheckParams(kName, params, 2);
  affine_.Forward(rows, params.tensors[0], params.tensors[1], scores);
  SoftmaxInPlace(rows.num_rows, affine_.num_outputs(), scores, predicted);
}

}  // namespace mrtrain::models
