#include "engine/models/affine_map.h"

#include <algorithm>

#include "engine/tensor/blas.h"

namespace mrtrain::models {

void AffineMap::Resize(int64_t num_inputs, int64_t num_outputs) {
  num_inputs_ = num_inputs;
  num_outputs_ = num_outputs;
  dw_.assign(num_inputs * num_outputs, 0.0f);
  db_.assign(num_outputs, 0.0f);
  dw_dirty_ = false;
  column_touched_.clear();
  touched_columns_.clear();
}

void AffineMap::Forward(const api::Rows& rows, const float* w, const float* b, float* z) const {
  const int64_t n = rows.num_rows;
  const int64_t k = num_outputs_;
  if (rows.is_sparse) {
    ForwardSparse(rows, w, b, z);
    return;
  }
  if (k == 1) {
    blas::Gemv(false, n, num_inputs_, 1.0f, rows.dense, num_inputs_, w, 0.0f, z);
    for (int64_t i = 0; i < n; ++i) z[i] += b[0];
    return;
  }
  blas::Gemm(false, false, n, k, num_inputs_, 1.0f, rows.dense, num_inputs_, w, k, 0.0f, z, k);
  for (int64_t i = 0; i < n; ++i) {
    float* zi = z + i * k;
    for (int64_t j = 0; j < k; ++j) zi[j] += b[j];
  }
}

void AffineMap::ForwardSparse(const api::Rows& rows, const float* w, const float* b,
                              float* z) const {
  const int64_t k = num_outputs_;
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    float* zi = z + i * k;
    std::copy(b, b + k, zi);
    for (int64_t p = rows.row_offsets[i]; p < rows.row_offsets[i + 1]; ++p) {
      const float v = rows.values[p];
      const float* wc = w + static_cast<int64_t>(rows.cols[p]) * k;
      for (int64_t j = 0; j < k; ++j) zi[j] += v * wc[j];
    }
  }
}

void AffineMap::Backward(const api::Rows& rows, const float* dz, int w_id, int b_id,
                         api::GradientSink& sink) {
  const int64_t k = num_outputs_;
  std::fill(db_.begin(), db_.end(), 0.0f);
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    const float* dzi = dz + i * k;
    for (int64_t j = 0; j < k; ++j) db_[j] += dzi[j];
  }
  if (rows.is_sparse) {
    BackwardSparse(rows, dz);
    EmitSparseWeights(w_id, sink);
  } else {
    BackwardDense(rows, dz);
    sink.AddTensor(w_id, dw_);
  }
  sink.AddTensor(b_id, db_);
}

void AffineMap::BackwardDense(const api::Rows& rows, const float* dz) {
  const int64_t n = rows.num_rows;
  const int64_t k = num_outputs_;
  if (k == 1) {
    blas::Gemv(true, n, num_inputs_, 1.0f, rows.dense, num_inputs_, dz, 0.0f, dw_.data());
  } else {
    blas::Gemm(true, false, num_inputs_, k, n, 1.0f, rows.dense, num_inputs_, dz, k, 0.0f,
               dw_.data(), k);
  }
  dw_dirty_ = true;
}

void AffineMap::BackwardSparse(const api::Rows& rows, const float* dz) {
  const int64_t k = num_outputs_;
  if (dw_dirty_) {
    std::fill(dw_.begin(), dw_.end(), 0.0f);
    dw_dirty_ = false;
  }
  if (column_touched_.empty()) column_touched_.assign(num_inputs_, 0);
  touched_columns_.clear();
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    const float* dzi = dz + i * k;
    for (int64_t p = rows.row_offsets[i]; p < rows.row_offsets[i + 1]; ++p) {
      const uint32_t c = rows.cols[p];
      if (!column_touched_[c]) {
        column_touched_[c] = 1;
        touched_columns_.push_back(c);
      }
      const float v = rows.values[p];
      float* dwc = dw_.data() + static_cast<int64_t>(c) * k;
      for (int64_t j = 0; j < k; ++j) dwc[j] += v * dzi[j];
    }
  }
}

bool AffineMap::CollectTouchedBlocks(int64_t block_size) {
  // Past half the tensor one AddTensor is cheaper than many AddBlock calls and the sort.
  if (block_size < 1 || static_cast<int64_t>(touched_columns_.size()) * 2 > num_inputs_) {
    return false;
  }
  const int64_t k = num_outputs_;
  const int64_t total_blocks = (num_inputs_ * k + block_size - 1) / block_size;
  std::sort(touched_columns_.begin(), touched_columns_.end());
  touched_blocks_.clear();
  for (uint32_t c : touched_columns_) {
    const int64_t first = static_cast<int64_t>(c) * k / block_size;
    const int64_t last = (static_cast<int64_t>(c) * k + k - 1) / block_size;
    for (int64_t block = first; block <= last; ++block) {
      // Columns are sorted, so a repeated block can only be the last one added.
      if (touched_blocks_.empty() || touched_blocks_.back() < block) {
        touched_blocks_.push_back(block);
      }
    }
  }
  return static_cast<int64_t>(touched_blocks_.size()) * 2 <= total_blocks;
}

void AffineMap::EmitSparseWeights(int w_id, api::GradientSink& sink) {
  const int64_t block_size = sink.block_size();
  if (CollectTouchedBlocks(block_size)) {
    // A tensor's last block is short.
    const int64_t total = static_cast<int64_t>(dw_.size());
    for (int64_t block : touched_blocks_) {
      const int64_t begin = block * block_size;
      sink.AddBlock(w_id, block, dw_.data() + begin,
                    static_cast<size_t>(std::min(block_size, total - begin)));
    }
  } else {
    sink.AddTensor(w_id, dw_);
  }
  const int64_t k = num_outputs_;
  for (uint32_t c : touched_columns_) {
    std::fill_n(dw_.data() + static_cast<int64_t>(c) * k, k, 0.0f);
    column_touched_[c] = 0;
  }
  touched_columns_.clear();
}

}  // namespace mrtrain::models
