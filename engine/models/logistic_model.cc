#include "engine/models/logistic_model.h"

#include <algorithm>
#include <cmath>

#include "engine/models/batch_checks.h"

namespace mrtrain::models {
namespace {

constexpr char kName[] = "logistic";

// sigmoid(z) from e = exp(-|z|), which never overflows: 1 / (1 + e) for z >= 0 and
// e / (1 + e) = 1 / (1 + exp(-z)) for z < 0.
float Sigmoid(float z, float e) { return (z >= 0 ? 1.0f : e) / (1.0f + e); }

}  // namespace

std::vector<api::TensorSpec> LogisticModel::DescribeModel(const api::DataShape& shape) {
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

void LogisticModel::NeededRows(const api::Rows& rows, api::RowRequest& request) {
  if (row_sparse_ && rows.num_rows > 0) {
    CheckRows(kName, rows, num_inputs(), /*needs_labels=*/false);
    sparse_.NeededRows(rows, request);
  }
}

int64_t LogisticModel::num_inputs() const {
  return row_sparse_ ? sparse_.num_inputs() : affine_.num_inputs();
}

void LogisticModel::Forward(const api::Rows& rows, const api::ParamsView& params, float* z) {
  if (row_sparse_) {
    sparse_.Forward(rows, params, z);
  } else {
    affine_.Forward(rows, params.tensors[0], params.tensors[1], z);
  }
}

void LogisticModel::Backward(const api::Rows& rows, api::GradientSink& sink) {
  if (row_sparse_) {
    sparse_.Backward(rows, z_.data(), sink);
  } else {
    affine_.Backward(rows, z_.data(), 0, 1, sink);
  }
}

void LogisticModel::LossAndResiduals(const api::Rows& rows, const api::ParamsView& params,
                                     api::MapStats& stats) {
  CheckRows(kName, rows, num_inputs(), /*needs_labels=*/true);
  CheckParams(kName, params, 2);
  const int64_t n = rows.num_rows;
  CheckBinaryLabels(kName, rows.labels, n);
  if (static_cast<int64_t>(z_.size()) < n) z_.resize(n);
  Forward(rows, params, z_.data());
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float z = z_[i];
    const float y = rows.labels[i] == 1 ? 1.0f : 0.0f;
    const float e = std::exp(-std::abs(z));
    // -y log p - (1 - y) log(1 - p) = log(1 + exp(z)) - y z
    //                               = log1p(exp(-|z|)) + max(z, 0) - y z.
    loss += static_cast<double>(std::log1p(e)) + std::max(z, 0.0f) - y * z;
    correct += (z >= 0) == (y == 1);
    z_[i] = Sigmoid(z, e) - y;  // dLoss/dz
  }
  stats.loss_sum += loss;
  stats.examples += n;
  stats.correct += correct;
}

void LogisticModel::Gradient(const api::MapContext& /*ctx*/, const api::Rows& rows,
                             const api::ParamsView& params, api::GradientSink& sink,
                             api::MapStats& stats) {
  LossAndResiduals(rows, params, stats);
  if (rows.num_rows > 0) Backward(rows, sink);
}

void LogisticModel::Evaluate(const api::Rows& rows, const api::ParamsView& params,
                             api::MapStats& stats) {
  LossAndResiduals(rows, params, stats);
}

void LogisticModel::Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
                            float* scores) {
  CheckRows(kName, rows, num_inputs(), /*needs_labels=*/false);
  CheckParams(kName, params, 2);
  Forward(rows, params, scores);
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    const float z = scores[i];
    predicted[i] = z >= 0 ? 1.0f : 0.0f;
    scores[i] = Sigmoid(z, std::exp(-std::abs(z)));
  }
}

}  // namespace mrtrain::models
