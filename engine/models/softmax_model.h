#pragma once

#include <cstdint>
#include <vector>

#include "engine/api/mapper.h"
#include "engine/models/affine_map.h"

namespace mrtrain::models {

// Multinomial logistic (softmax) regression (model type "softmax"): class probabilities
// softmax(x W + b), cross-entropy loss. Tensors W[d x K] (weight) and b[K] (bias). K is the
// `classes` setting, or the data's class count when that is 0. Labels must be integers in
// [0, K); any other label throws std::invalid_argument naming the row and label. A row counts
// as correct when its most probable class is its label. Accepts dense and sparse rows.
// One instance per thread (it keeps scratch buffers).
class SoftmaxModel final : public api::Mapper {
 public:
  // classes: K, or 0 to take it from the data. REQUIRES: classes == 0 or classes >= 2.
  explicit SoftmaxModel(int64_t classes) : classes_(classes) {}

  std::vector<api::TensorSpec> DescribeModel(const api::DataShape& shape) override;
  void Gradient(const api::MapContext& ctx, const api::Rows& rows, const api::ParamsView& params,
                api::GradientSink& sink, api::MapStats& stats) override;
  void Evaluate(const api::Rows& rows, const api::ParamsView& params,
                api::MapStats& stats) override;
  // K once DescribeModel has run.
  int NumOutputs() const override { return static_cast<int>(affine_.num_outputs()); }
  // Writes the most probable class as the prediction and the K class probabilities as scores.
  void Predict(const api::Rows& rows, const api::ParamsView& params, float* predicted,
               float* scores) override;

 private:
  // Checks the call, adds the loss, examples and correct count to `stats`, and, if
  // `gradient`, leaves dLoss/dZ in z_.
  void Loss(const api::Rows& rows, const api::ParamsView& params, bool gradient,
            api::MapStats& stats);

  const int64_t classes_;  // as configured; 0 means from the data
  AffineMap affine_;
  std::vector<float> z_;  // rows x K; grows to the largest batch
};

}  // namespace mrtrain::models
