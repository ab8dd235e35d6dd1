#pragma once

#include <cstdint>
#include <vector>

#include "engine/api/mapper.h"
#include "engine/models/row_gradient.h"
#include "engine/models/row_weights.h"

namespace mrtrain::models {

// The length of an fm's factor vectors when model.factors is not given (libFM's usual 8).
inline constexpr int64_t kDefaultFmFactors = 8;

// A factorization machine of order 2 (Rendle 2010) for binary labels (model type "fm"):
//
//   y(x) = b + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j,   P(y = 1 | x) = sigmoid(y)
//
// with log loss. Tensors, in this order: w [features] and b [1] (the logistic model's, so an fm
// whose factors are all 0 is that model), and v [features, factors], one factor vector per
// feature. The pairwise sum is computed as Rendle's identity
//
//   sum_{i<j} <v_i, v_j> x_i x_j = 1/2 sum_f ((sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2)
//
// over the row's nonzeros only: O(factors * nnz) per row, for dense rows too (their zeros are
// skipped). The gradient of v_if is x_i (s_f - v_if x_i), s_f = sum_j v_jf x_j. Gradients of w and
// v go out for the features the batch touched only (row_gradient.h).
//
// Labels as for the logistic model: 0 or 1, -1 read as 0. v must not start at 0 (its gradient
// would stay 0) nor tiny (the pairwise gradients scale with v^2): the spec's default init for fm is
// uniform in [-0.1, 0.1), seeded by training.seed. One instance per thread (it keeps scratch
// buffers).
class FmModel final : public api::Mapper {
 public:
  // REQUIRES: factors >= 1 (the registry checks model.factors).
  explicit FmModel(int64_t factors);

  // w and v are row-sparse ([features, 1] and [features, factors]) on sparse input from
  // kRowSparseMinParams per-feature parameters up.
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
  // One row's nonzeros: straight from the CSR, or gathered from a dense row into idx_/val_.
  struct Nonzeros {
    const uint32_t* cols = nullptr;
    const float* values = nullptr;
    int64_t count = 0;
  };
  Nonzeros RowAt(const api::Rows& rows, int64_t i);

  // y for one row; leaves s_f in sums_.
  float Score(const Nonzeros& x, const api::ParamsView& params);
  // Adds dLoss/dy = dz times the row's dy/dw and dy/dv to w_grad_ and v_grad_.
  // REQUIRES: sums_ holds the row's s_f (Score ran on it last).
  void AddRowGradient(const Nonzeros& x, float dz, const api::ParamsView& params);
  // Feature c's weight and factor vector, from the dense tensors or the pulled rows.
  const float* WeightOf(const api::ParamsView& params, uint32_t c) const {
    return row_sparse_ ? params.Row(0, c) : params.tensors[0] + c;
  }
  const float* FactorsOf(const api::ParamsView& params, uint32_t c) const {
    return row_sparse_ ? params.Row(2, c) : params.tensors[2] + static_cast<int64_t>(c) * factors_;
  }
  // Checks the call and adds the loss, examples and correct count; with `sink`, also the
  // gradient.
  void Run(const api::Rows& rows, const api::ParamsView& params, api::GradientSink* sink,
           api::MapStats& stats);

  const int64_t factors_;
  int64_t num_features_ = 0;
  bool row_sparse_ = false;
  std::vector<uint32_t> need_scratch_;
  std::vector<float> sums_;  // factors_: s_f of the current row
  std::vector<uint32_t> idx_;
  std::vector<float> val_;
  RowGradient w_grad_;
  RowGradient v_grad_;
};

}  // namespace mrtrain::models
