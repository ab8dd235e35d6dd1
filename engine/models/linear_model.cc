#include "engine/models/linear_model.h"

#include <algorithm>

#include "engine/models/batch_checks.h"

namespace mrtrain::models {
namespace {

constexpr char kName[] = "linear";

}  // namespace

std::vector<api::TensorSpec> LinearModel::DescribeModel(const api::DataShape& shape) {
  CheckShape(kName, shape);
  row_sparse_ = UsesRowSparseWeights(shape, 1);
  if (row_sparse_) {
    sparse_.Resize(shape.num_features);
    return {{"w", {shape.num_features, 1}, api::TensorSpec::Role::kWeight, /*row_sparse=*/true},
            {"b", {1}, api::TensorSpec::Role::kBias}};
  }
  affine_.Resize(shape.num_features, 1);
  return {{"w", {shape.num_features}, api::TensorSpec::Role::kWeight},
          {"b", {1}, api::TensorSpec::Role::kBias}};
}

void LinearModel::NeededRows(const api::Rows& rows, api::RowRequest& request) {
  if (row_sparse_ && rows.num_rows > 0) {
    CheckRows(kName, rows, num_inputs(), /*needs_labels=*/false);
    sparse_.NeededRows(rows, request);
  }
}

int64_t LinearModel::num_inputs() const {
  return row_sparse_ ? sparse_.num_inputs() : affine_.num_inputs();
}

void LinearModel::Forward(const api::Rows& rows, const api::ParamsView& params, float* z) {
  if (row_sparse_) {
    sparse_.Forward(rows, params, z);
  } else {
    affine_.Forward(rows, params.tensors[0], params.tensors[1], z);
  }
}

void LinearModel::Backward(const api::Rows& rows, api::GradientSink& sink) {
  if (row_sparse_) {
    sparse_.Backward(rows, z_.data(), sink);
  } else {
    affine_.Backward(rows, z_.data(), 0, 1, sink);
  }
}

double LinearModel::Residuals(const api::Rows& rows, const api::ParamsView& params) {
  CheckRows(kName, rows, num_inputs(), /*needs_labels=*/true);
  CheckParams(kName, params, 2);
  const int64_t n = rows.num_rows;
  if (static_cast<int64_t>(z_.size()) < n) z_.resize(n);
  Forward(rows, params, z_.data());
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float r = z_[i] - rows.labels[i];
    loss += 0.5 * static_cast<double>(r) * r;
    z_[i] = r;  // dLoss/dz
  }
  return loss;
}

void LinearModel::Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                           const api::ParamsView& params, api::GradientSink& sink,
                           api::MapStats& stats) {
  stats.loss_sum += Residuals(rows, params);
  stats.examples += rows.num_rows;
  if (rows.num_rows > 0) Backward(rows, sink);
}

void LinearModel::Evaluate(const api::Rows& rows, const api::ParamsView& params,
                           api::MapStats& stats) {
  stats.loss_sum += Residuals(rows, params);
  stats.examples += rows.num_rows;
}

void LinearModel::Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
                          float* scores) {
  CheckRows(kName, rows, num_inputs(), /*needs_labels=*/false);
  CheckParams(kName, params, 2);
  Forward(rows, params, predicted);
  std::copy(predicted, predicted + rows.num_rows, scores);
}

}  // namespace mrtrain::models
