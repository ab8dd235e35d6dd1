#include "engine/models/row_gradient.h"

#include <algorithm>

namespace mrtrain::models {

void RowGradient::Resize(int64_t num_rows, int64_t width, bool row_sparse) {
  num_rows_ = num_rows;
  width_ = width;
  row_sparse_ = row_sparse;
  table_.clear();
  slot_.assign(row_sparse ? 0 : num_rows, 0);
  touched_.clear();
  sums_.clear();
}

void RowGradient::GrowTable() {
  std::vector<uint64_t> old;
  old.swap(table_);
  const size_t size = old.empty() ? 64 : old.size() * 2;
  table_.assign(size, 0);
  table_shift_ = 32;
  for (size_t s = size; s > 1; s /= 2) --table_shift_;
  const uint32_t mask = static_cast<uint32_t>(size - 1);
  for (uint64_t entry : old) {
    if (entry == 0) continue;
    uint32_t i = (static_cast<uint32_t>(entry >> 32) * 0x9E3779B9u) >> table_shift_;
    while (table_[i] != 0) i = (i + 1) & mask;
    table_[i] = entry;
  }
}

uint32_t RowGradient::TableSlot(uint32_t row, uint32_t slot) {
  // At most half full, so a miss ends after a couple of entries on average.
  if ((static_cast<size_t>(slot) + 1) * 2 > table_.size()) GrowTable();
  const uint32_t mask = static_cast<uint32_t>(table_.size() - 1);
  // Fibonacci hashing: the top bits of row * 2^32/phi.
  for (uint32_t i = (row * 0x9E3779B9u) >> table_shift_;; i = (i + 1) & mask) {
    const uint64_t entry = table_[i];
    if (entry == 0) {
      table_[i] = (static_cast<uint64_t>(row) << 32) | slot;
      return slot;
    }
    if (static_cast<uint32_t>(entry >> 32) == row) return static_cast<uint32_t>(entry);
  }
}

float* RowGradient::Row(uint32_t row) {
  const uint32_t next = static_cast<uint32_t>(touched_.size()) + 1;
  const uint32_t slot = row_sparse_ ? TableSlot(row, next) : (slot_[row] ? slot_[row] : next);
  if (slot == next) {
    if (!row_sparse_) slot_[row] = next;
    touched_.push_back(row);
    sums_.resize(sums_.size() + width_, 0.0f);
  }
  return sums_.data() + (slot - 1) * width_;
}

void RowGradient::EmitRows(int tensor_id, api::GradientSink& sink) {
  // Sorted with their slots, so that no row is looked up again.
  by_row_.resize(touched_.size());
  for (size_t i = 0; i < touched_.size(); ++i) {
    by_row_[i] = {touched_[i], static_cast<uint32_t>(i + 1)};
  }
  std::sort(by_row_.begin(), by_row_.end());
  for (const auto& [row, slot] : by_row_) {
    sink.AddRow(tensor_id, row, Held(slot), static_cast<size_t>(width_));
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
    const float* sums = Held(slot_[row]);
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
    std::copy_n(Held(slot_[row]), width_, scratch_.begin() + static_cast<int64_t>(row) * width_);
  }
  sink.AddTensor(tensor_id, scratch_);
}

void RowGradient::Emit(int tensor_id, api::GradientSink& sink) {
  if (touched_.empty()) return;
  const int64_t block_size = sink.block_size();
  if (row_sparse_) {
    EmitRows(tensor_id, sink);
    std::fill(table_.begin(), table_.end(), 0);
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
