#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/api/views.h"

namespace mrtrain::models {

// Sums the gradient of the rows of one [num_rows, width] tensor that a batch touches (a
// feature's weight, or its factor vector), holding only those rows, and sends them to a
// GradientSink: as the blocks they fall in when they are few, else as the whole tensor. Rows
// are kept apart from the tensor, by id, so the same sums can later go out as (row id, values)
// lists once tensors can be row-sparse.
//
// Memory: one uint32 per row of the tensor (which rows are held) plus width floats per touched
// row; the whole tensor only when it is sent whole. For a row-sparse tensor, a hash map of the
// touched rows instead, and the rows go out as rows (GradientSink::AddRow), ascending by id.
// Not thread-safe (one per mapper).
class RowGradient {
 public:
  // Sizes it for a tensor of num_rows x width and drops what it held. `row_sparse`: the tensor
  // is row-sparse (nothing of num_rows size is allocated).
  // REQUIRES: num_rows >= 1, width >= 1.
  void Resize(int64_t num_rows, int64_t width, bool row_sparse = false);

  // The width floats summing row `row`'s gradient, zero when the row was not touched since the
  // last Emit. Valid until the next call of Row or Emit. REQUIRES: row < num_rows.
  float* Row(uint32_t row);

  // The rows touched since the last Emit, each once, in the order first touched.
  const std::vector<uint32_t>& touched_rows() const { return touched_; }

  // Adds the held rows to `sink` as tensor `tensor_id` and forgets them. Sends nothing when no
  // row was touched.
  void Emit(int tensor_id, api::GradientSink& sink);

 private:
  // Sorts touched_ and says whether the rows fall in few enough blocks to send block by block.
  bool SortAndCountBlocks(int64_t block_size);
  void EmitBlocks(int tensor_id, int64_t block_size, api::GradientSink& sink);
  void EmitWhole(int tensor_id, api::GradientSink& sink);
  void EmitRows(int tensor_id, api::GradientSink& sink);
  uint32_t SlotOf(uint32_t row) const { return row_sparse_ ? row_slot_.at(row) : slot_[row]; }
  const float* Held(uint32_t row) const { return sums_.data() + (SlotOf(row) - 1) * width_; }

  int64_t num_rows_ = 0;
  int64_t width_ = 0;
  bool row_sparse_ = false;
  std::unordered_map<uint32_t, uint32_t> row_slot_;  // row-sparse: what slot_ holds
  std::vector<uint32_t> slot_;  // per row: 0 when not held, else 1 + its index in touched_
  std::vector<uint32_t> touched_;
  std::vector<float> sums_;     // width floats per touched row, in touched_ order at first
  std::vector<float> scratch_;  // one block, or the whole tensor
};

}  // namespace mrtrain::models
