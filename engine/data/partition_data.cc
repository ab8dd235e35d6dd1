#include "engine/data/partition_data.h"

#include <algorithm>

#include "engine/base/check.h"

namespace mrtrain::data {

std::optional<RowSources::Position> RowSources::Find(int64_t row) const {
  // The last run starting at or before `row`.
  auto it = std::upper_bound(runs.begin(), runs.end(), row,
                             [](int64_t r, const Run& run) { return r < run.first_row; });
  if (it == runs.begin() || row < 0) return std::nullopt;
  --it;
  return Position{it->file, it->start, row - it->first_row};
}

api::Rows PartitionData::View(int64_t view_cols) const {
  // A dense row of a different width cannot be reinterpreted; a sparse one can report more
  // columns than it touches. Both are caller bugs that would read out of bounds.
  MRTRAIN_CHECK(is_sparse ? view_cols >= num_cols : view_cols == num_cols);
  api::Rows rows;
  rows.num_rows = num_rows;
  rows.num_cols = view_cols;
  rows.is_sparse = is_sparse;
  rows.labels = label_data();
  if (is_sparse) {
    rows.row_offsets = row_offset_data();
    rows.cols = col_data();
    rows.values = value_data();
  } else {
    rows.dense = dense_data();
  }
  return rows;
}

void PartitionData::Gather(const int64_t* indices, int64_t n, PartitionData* out) const {
  out->num_rows = n;
  out->num_cols = num_cols;
  out->is_sparse = is_sparse;
  out->dense.clear();
  out->row_offsets.clear();
  out->cols.clear();
  out->values.clear();
  out->labels.resize(n);
  out->skipped_records = 0;
  out->skipped_samples.clear();
  out->sources = RowSources();
  if (is_sparse) {
    out->row_offsets.reserve(n + 1);
    out->row_offsets.push_back(0);
  } else {
    out->dense.resize(n * num_cols);
  }
  out->borrowed.reset();
  const float* in_labels = label_data();
  const float* in_dense = dense_data();
  const int64_t* in_offsets = row_offset_data();
  const uint32_t* in_cols = col_data();
  const float* in_values = value_data();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = indices[i];
    MRTRAIN_DCHECK(r >= 0 && r < num_rows);
    out->labels[i] = in_labels[r];
    if (is_sparse) {
      const int64_t begin = in_offsets[r];
      const int64_t end = in_offsets[r + 1];
      out->cols.insert(out->cols.end(), in_cols + begin, in_cols + end);
      out->values.insert(out->values.end(), in_values + begin, in_values + end);
      out->row_offsets.push_back(static_cast<int64_t>(out->cols.size()));
    } else {
      std::copy_n(in_dense + r * num_cols, num_cols, out->dense.begin() + i * num_cols);
    }
  }
}

int64_t PartitionData::MemoryBytes() const {
  int64_t bytes = sizeof(*this);
  bytes += dense.capacity() * sizeof(float);
  bytes += row_offsets.capacity() * sizeof(int64_t);
  bytes += cols.capacity() * sizeof(uint32_t);
  bytes += values.capacity() * sizeof(float);
  bytes += labels.capacity() * sizeof(float);
  for (const std::string& s : skipped_samples) bytes += sizeof(s) + s.capacity();
  bytes += sources.runs.capacity() * sizeof(RowSources::Run);
  for (const std::string& f : sources.files) bytes += sizeof(f) + f.capacity();
  if (borrowed) bytes += borrowed->bytes;
  return bytes;
}

}  // namespace mrtrain::data
