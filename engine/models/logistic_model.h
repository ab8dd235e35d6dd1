#pragma once

#include <vector>

#include "engine/api/mapper.h"
#include "engine/models/affine_map.h"
#include "engine/models/row_weights.h"

namespace mrtrain::models {

// Binary logistic regression (model type "logistic"): P(y = 1 | x) = sigmoid(x.w + b), log
// loss. Tensors w[d] (weight) and b[1] (bias). Labels are 0 or 1, with -1 read as 0 (the
// libsvm convention); any other label throws std::invalid_argument naming it. A row counts
// as correct when P(y = 1) >= 0.5 exactly when its label is 1. Accepts dense and sparse rows.
// One instance per thread (it keeps scratch buffers).
class LogisticModel final : public api::Mapper {
 public:
  // w is row-sparse [features, 1] on sparse input from kRowSparseMinParams per-feature parameters
  // up.
  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override;
  void NeededRows(const api::Rows& rows, api::RowRequest& request) override;
  void Gradient(const api::MapContext& ctx, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override;
  void Evaluate(const api::Rows& rows, const api::ParamsView& params,
                api::MapStats& stats) override;
  int NumOutputs() const override { return 1; }
  // Writes the class (0 or 1) as the prediction and P(y = 1) as the one score.
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override;

 private:
  // Checks the call, adds the loss, examples and correct count to `stats`, and leaves
  // dLoss/dz = P(y = 1) - y in z_.
  void LossAndResiduals(const api::Rows& rows, const api::ParamsView& params, api::MapStats& stats);

  // z = x.w + b into z (one per row), by whichever of affine_ and sparse_ the model uses.
  void Forward(const api::Rows& rows, const api::ParamsView& params, float* z);
  void Backward(const api::Rows& rows, api::GradientSink& sink);
  int64_t num_inputs() const;

  bool row_sparse_ = false;
  AffineMap affine_;
  RowSparseAffine sparse_;
  std::vector<float> z_;  // one per row; grows to the largest batch
};

}  // namespace mrtrain::models
