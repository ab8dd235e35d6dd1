#pragma once

#include <cstdint>
#include <utility>
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
// row; the whole tensor only when it is sent whole. For a row-sparse tensor, a flat hash table
// of the touched rows instead (8 bytes an entry, at most half full: Row runs for every nonzero
// of a batch), and the rows go out as rows (GradientSink::AddRow), ascending by id.
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
  // Row-sparse: the slot of `row` in table_, inserting it as `slot` when absent.
  uint32_t TableSlot(uint32_t row, uint32_t slot);
  void GrowTable();
  const float* Held(uint32_t slot) const { return sums_.data() + (slot - 1) * width_; }

  int64_t num_rows_ = 0;
  int64_t width_ = 0;
  bool row_sparse_ = false;
  // Row-sparse: what slot_ holds, by open addressing: entries row << 32 | slot, 0 when free
  // (a slot is never 0), a power of two long.
  std::vector<uint64_t> table_;
  int table_shift_ = 32;
  std::vector<uint32_t> slot_;  // per row: 0 when not held, else 1 + its index in touched_
  std::vector<std::pair<uint32_t, uint32_t>> by_row_;  // row-sparse Emit: (row, slot), sorted
  std::vector<uint32_t> touched_;
  std::vector<float> sums_;     // width floats per touched row, in touched_ order at first
  std::vector<float> scratch_;  // one block, or the whole tensor
};

}  // namespace mrtrain::models
