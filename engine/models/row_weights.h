#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "engine/api/views.h"
#include "engine/models/row_gradient.h"

namespace mrtrain::models {

// From this many per-feature parameters up (features x floats per feature), the built-in
// linear models (logistic, linear, fm) keep their per-feature tensors row-sparse on sparse
// input: a round then reads and writes only the rows of the features its rows hold. Below it a
// dense tensor is cheaper (pulled once per step and cached by each worker) and stays as it
// always was. Measured (tools/bench --only sparse_round_cost, 1000 rows a round, one loaded
// machine): at 2^20 features the dense path takes about a third of the row path's time, at 2^22
// the row path is already a little faster (p10 of 44 rounds 19.5 ms against 24.7), at 2^24
// 5x faster; criteo's rounds of 250,000 rows at 2^24 ran 2.0x the examples/s on rows.
inline constexpr int64_t kRowSparseMinParams = int64_t{1} << 22;

// Whether the built-in linear models use row-sparse per-feature tensors for data of `shape`,
// `floats_per_feature` parameters per feature (1 for w, 1 + factors for an fm).
bool UsesRowSparseWeights(const api::DataShape& shape, int64_t floats_per_feature);

// Names the features of `rows` (sparse) as rows of each tensor in `tensors`, each distinct
// feature once. `scratch` is reused between calls.
void NeedFeatureRows(const api::Rows& rows, std::initializer_list<int> tensors,
                     std::vector<uint32_t>* scratch, api::RowRequest& request);

// z = x.w + b for sparse rows with w a row-sparse tensor [features, 1] (tensor 0, one row per
// feature) and b a dense [1] (tensor 1): the logistic and linear models on wide sparse input.
// Holds only the touched rows' gradient sums. One per mapper (not thread-safe).
class RowSparseAffine {
 public:
  void Resize(int64_t num_features);
  int64_t num_inputs() const { return num_features_; }

  // Names the rows of w the features of `rows` need.
  void NeededRows(const api::Rows& rows, api::RowRequest& request);
  // z[i] = b + sum over row i's nonzeros x_c of x_c * w_c.
  void Forward(const api::Rows& rows, const api::ParamsView& params, float* z) const;
  // Emits dLoss/dw_c = sum_i dz[i] x_ic for the features touched (rows of tensor 0, ascending)
  // and dLoss/db = sum_i dz[i] (tensor 1).
  void Backward(const api::Rows& rows, const float* dz, api::GradientSink& sink);

 private:
  int64_t num_features_ = 0;
  RowGradient w_grad_;
  std::vector<uint32_t> scratch_;
};

}  // namespace mrtrain::models
