#include "engine/models/row_gradient.h"

#include <algorithm>

namespace mrtrain::models {

void RowGradient::Resize(int64_t num_rows, int64_t width, bool row_sparse) {
  num_rows_ = num_rows;
  width_ = width;
  row_sparse_ = row_sparse;
  row_slot_.clear();
  slot_.assign(row_sparse ? 0 : num_rows, 0);
  touched_.clear();
  sums_.clear();
}

float* RowGradient::Row(uint32_t row) {
  uint32_t& slot = row_sparse_ ? row_slot_[row] : slot_[row];
  if (slot == 0) {
    touched_.push_back(row);
    slot = static_cast<uint32_t>(touched_.size());
    sums_.resize(sums_.size() + width_, 0.0f);
  }
  return sums_.data() + (slot - 1) * width_;
}

void RowGradient::EmitRows(int tensor_id, api::GradientSink& sink) {
  std::sort(touched_.begin(), touched_.end());
  for (uint32_t row : touched_) {
    sink.AddRow(tensor_id, row, Held(row), static_cast<size_t>(width_));
  }
}

bool RowGradient::SortAndCountBlocks(int64_t block_size) {
  // Sorting moves ids, not their sums: slot_ still finds each row's sums.
  std::sort(touched_.begin(), touched_.end());
  // Past half the rows one AddTensor is cheaper than many AddBlock calls.
  if (block_size < 1 || static_cast<int64_t>(touched_.size()) * 2 > num_rows_) return false;
  const int64_t total_blocks = (num_rows_ * width_ + block_size - 1) / block_size;
  int64_t blocks = 0;
  int64_t last = -1;
  for (uint32_t row : touched_) {
    const int64_t first = static_cast<int64_t>(row) * width_ / block_size;
    const int64_t end = (static_cast<int64_t>(row) * width_ + width_ - 1) / block_size;
    blocks += end - std::max(first - 1, last);
    last = end;
  }
  return blocks * 2 <= total_blocks;
}

void RowGradient::EmitBlocks(int tensor_id, int64_t block_size, api::GradientSink& sink) {
  const int64_t total = num_rows_ * width_;
  int64_t current = -1;  // the block in scratch_
  auto flush = [&] {
    if (current < 0) return;
    const int64_t begin = current * block_size;
    sink.AddBlock(tensor_id, current, scratch_.data(),
                  static_cast<size_t>(std::min(block_size, total - begin)));
  };
  scratch_.resize(std::min(block_size, total));
  for (uint32_t row : touched_) {  // sorted, so blocks come in order
    const float* sums = Held(row);
    const int64_t row_begin = static_cast<int64_t>(row) * width_;
    // A row may straddle blocks when width does not divide block_size.
    for (int64_t e = row_begin; e < row_begin + width_;) {
      const int64_t block = e / block_size;
      if (block != current) {
        flush();
        current = block;
        std::fill(scratch_.begin(), scratch_.end(), 0.0f);
      }
      const int64_t stop = std::min((block + 1) * block_size, row_begin + width_);
      std::copy(sums + (e - row_begin), sums + (stop - row_begin),
                scratch_.begin() + (e - block * block_size));
      e = stop;
    }
  }
  flush();
}

void RowGradient::EmitWhole(int tensor_id, api::GradientSink& sink) {
  scratch_.assign(num_rows_ * width_, 0.0f);
  for (uint32_t row : touched_) {
    std::copy_n(Held(row), width_, scratch_.begin() + static_cast<int64_t>(row) * width_);
  }
  sink.AddTensor(tensor_id, scratch_);
}

void RowGradient::Emit(int tensor_id, api::GradientSink& sink) {
  if (touched_.empty()) return;
  const int64_t block_size = sink.block_size();
  if (row_sparse_) {
    EmitRows(tensor_id, sink);
    row_slot_.clear();
    touched_.clear();
    sums_.clear();
    return;
  }
  if (SortAndCountBlocks(block_size)) {
    EmitBlocks(tensor_id, block_size, sink);
  } else {
    EmitWhole(tensor_id, sink);
  }
  for (uint32_t row : touched_) slot_[row] = 0;
  touched_.clear();
  sums_.clear();
}

}  // namespace mrtrain::models
