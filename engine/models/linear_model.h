#pragma once

#include <vector>

#include "engine/api/mapper.h"
#include "engine/models/affine_map.h"
#include "engine/models/row_weights.h"

namespace mrtrain::models {

// Least-squares linear regression (model type "linear"): prediction x.w + b, loss
// 0.5 * (x.w + b - y)^2 per row. Tensors w[d] (weight) and b[1] (bias). Never counts rows as
// correct: the correct count is for classifiers. Accepts dense and sparse rows.
// One instance per thread (it keeps scratch buffers).
class LinearModel final : public api::Mapper {
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
  // Writes the predicted value both as the prediction and as the one score.
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override;

 private:
  // Checks the call, leaves the residuals x.w + b - y in z_ and returns the summed loss.
  double Residuals(const api::Rows& rows, const api::ParamsView& params);

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
