#pragma once

#include <cstdint>
#include <vector>

#include "engine/api/views.h"

namespace mrtrain::models {

// The affine map Z = X * W + b over a batch of rows, with W [num_inputs x num_outputs] and
// b [num_outputs], and its gradient. The linear, logistic and softmax models are this map
// followed by different losses, so they share it.
//
// Dense rows go through OpenBLAS over the whole batch: level 2 when num_outputs is 1, level 3
// otherwise. Sparse rows are computed from the CSR directly: only rows of W named by a
// nonzero are read, and the gradient of W is sent as the blocks those rows fall in when they
// are few (a hashed-feature model may have millions of weights and a batch touch hundreds).
//
// Owns scratch buffers that grow to the largest batch and are reused; not thread-safe (the
// engine gives each thread its own mapper, and each mapper its own AffineMap).
class AffineMap {
 public:
  // Sizes the map. REQUIRES: num_inputs >= 1, num_outputs >= 1.
  void Resize(int64_t num_inputs, int64_t num_outputs);

  int64_t num_inputs() const { return num_inputs_; }
  int64_t num_outputs() const { return num_outputs_; }

  // Writes Z into z[rows.num_rows x num_outputs]. REQUIRES: rows passed CheckRows for
  // num_inputs; w and b hold W and b as above.
  void Forward(const api::Rows& rows, const float* w, const float* b, float* z) const;

  // Given dz[rows.num_rows x num_outputs] = dLoss/dZ, adds dLoss/dW = X^T * dz (summed over
  // the rows) to `sink` as tensor w_id and dLoss/db = the column sums of dz as tensor b_id.
  // REQUIRES: as for Forward, and rows.num_rows >= 1.
  void Backward(const api::Rows& rows, const float* dz, int w_id, int b_id,
                api::GradientSink& sink);

 private:
  void ForwardSparse(const api::Rows& rows, const float* w, const float* b, float* z) const;
  void BackwardDense(const api::Rows& rows, const float* dz);
  void BackwardSparse(const api::Rows& rows, const float* dz);
  // Sends dw_ for the touched columns and returns it to all zeros.
  void EmitSparseWeights(int w_id, api::GradientSink& sink);
  // Whether the touched columns, sorted, lie in few enough blocks to send block by block;
  // fills touched_blocks_ when they do.
  bool CollectTouchedBlocks(int64_t block_size);

  int64_t num_inputs_ = 0;
  int64_t num_outputs_ = 0;

  std::vector<float> dw_;  // num_inputs x num_outputs
  std::vector<float> db_;  // num_outputs
  // The sparse path adds into dw_ and so needs it zero at the start; it leaves it zero at
  // the end by clearing only the touched rows. The dense path overwrites dw_ and sets this.
  bool dw_dirty_ = false;

  // Sparse bookkeeping: which rows of dw_ the current batch touched, each listed once.
  std::vector<uint8_t> column_touched_;  // num_inputs, all 0 between calls
  std::vector<uint32_t> touched_columns_;
  std::vector<int64_t> touched_blocks_;
};

}  // namespace mrtrain::models
