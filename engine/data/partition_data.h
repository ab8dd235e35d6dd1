#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/api/views.h"

namespace mrtrain::data {

// One partition of a dataset parsed into compact in-memory form: dense row-major float32, or
// CSR for sparse formats. Immutable once loaded; shared read-only across tasks and epochs.
struct PartitionData {
  int64_t num_rows = 0;
  int64_t num_cols = 0;  // dense: the row width; sparse: 1 + the largest column index seen
  bool is_sparse = false;

  std::vector<float> dense;          // dense: num_rows * num_cols
  std::vector<int64_t> row_offsets;  // sparse: num_rows + 1
  std::vector<uint32_t> cols;        // sparse: 0-based, increasing within a row
  std::vector<float> values;         // sparse
  std::vector<float> labels;         // num_rows

  // Records skipped under on_bad_record: skip, and the first few reasons (file:line: why).
  int64_t skipped_records = 0;
  std::vector<std::string> skipped_samples;

  // A view of all rows with `num_cols` columns reported (>= this->num_cols for sparse data,
  // so all partitions agree on the feature count).
  api::Rows View(int64_t view_cols) const;

  // Copies rows indices[0..n) (in that order) into *out, replacing its contents.
  void Gather(const int64_t* indices, int64_t n, PartitionData* out) const;

  // Bytes held, for cache accounting.
  int64_t MemoryBytes() const;
};

}  // namespace mrtrain::data
