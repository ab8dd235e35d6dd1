#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/views.h"

namespace mrtrain::data {

// Where the rows of a partition came from, kept compactly as runs: rows on consecutive lines
// (text) or consecutive records (idx) of one file. A text run ends at a line that gives no row (a
// header, a blank or comment line, a skipped bad record) and at the end of a file, so clean data
// costs one run per file a partition spans, and no format costs more than one run per row.
// Text runs keep the byte offset of their first line, not its number: counting lines would mean
// reading every file up to each partition, so DescribeRow (dataset.h) counts them on demand.
struct RowSources {
  enum class Unit { kLine, kRecord };
  struct Run {
    int64_t first_row = 0;  // the run's first row in the partition
    int64_t start = 0;      // kLine: byte offset of that row's line; kRecord: its record index
    int32_t file = 0;       // index into files
  };
  // Where one row is: its run's file and start, and how many lines or records after it.
  struct Position {
    int32_t file = 0;
    int64_t run_start = 0;
    int64_t after = 0;
  };

  Unit unit = Unit::kLine;
  std::vector<std::string> files;  // only the files this partition reads
  std::vector<Run> runs;           // first_row strictly increasing

  // Row `row`'s position, or nullopt when no run covers it (a partition built in memory).
  // REQUIRES: row < the partition's num_rows.
  std::optional<Position> Find(int64_t row) const;
};

// One partition of a dataset parsed into compact in-memory form: dense row-major float32, or
// CSR for sparse formats. Immutable once loaded; shared read-only across tasks and epochs.
// The arrays are owned (the vectors) or, for a shard a bounded cache serves in place, borrowed
// from the file's read-only mapping (`borrowed`, the vectors then empty): read them through
// View, Gather or the *_data() accessors, which take either.
struct PartitionData {
  // Arrays that lie elsewhere, kept there by `lease` for as long as this partition (or a copy
  // of it) lives. The layout is the owned arrays': same lengths, same alignment.
  struct Borrowed {
    std::shared_ptr<const void> lease;
    const float* labels = nullptr;
    const float* dense = nullptr;
    const int64_t* row_offsets = nullptr;
    const uint32_t* cols = nullptr;
    const float* values = nullptr;
    int64_t bytes = 0;  // of the arrays: resident once touched, so counted as owned ones are
  };

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

  // Set by Dataset::LoadPartition; empty for a partition built otherwise or by Gather.
  RowSources sources;

  std::optional<Borrowed> borrowed;

  const float* label_data() const { return borrowed ? borrowed->labels : labels.data(); }
  const float* dense_data() const { return borrowed ? borrowed->dense : dense.data(); }
  const int64_t* row_offset_data() const {
    return borrowed ? borrowed->row_offsets : row_offsets.data();
  }
  const uint32_t* col_data() const { return borrowed ? borrowed->cols : cols.data(); }
  const float* value_data() const { return borrowed ? borrowed->values : values.data(); }

  // A view of all rows with `num_cols` columns reported (>= this->num_cols for sparse data,
  // so all partitions agree on the feature count).
  api::Rows View(int64_t view_cols) const;

  // Copies rows indices[0..n) (in that order) into *out, replacing its contents. The copy has
  // no sources: its rows map back to this partition's through `indices`.
  void Gather(const int64_t* indices, int64_t n, PartitionData* out) const;

  // Bytes held (borrowed arrays included), for cache accounting.
  int64_t MemoryBytes() const;
};

}  // namespace mrtrain::data
