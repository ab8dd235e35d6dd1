#include "test/fuzz/dataset_driver.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "engine/base/check.h"
#include "engine/base/log.h"
#include "engine/data/partition_data.h"
#include "test/fuzz/scratch_files.h"

namespace mrtrain::fuzz {
namespace {

using data::BadRecordPolicy;
using data::DatasetSpec;
using data::PartitionData;

// Every partition of a dataset laid end to end: what must not depend on the partition count.
struct AllRows {
  int64_t partitions = 0;
  int64_t num_rows = 0;
  int64_t skipped = 0;
  int64_t width = 0;  // dense: the row width; sparse: the widest partition's num_cols
  std::vector<float> labels;
  std::vector<float> dense;
  std::vector<int64_t> row_lengths;  // sparse
  std::vector<uint32_t> cols;        // sparse
  std::vector<float> values;         // sparse
};

template <typename T>
bool SameBytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// The rows, not the per-partition statistics: skipped counts differ between policies.
bool SameRows(const AllRows& a, const AllRows& b) {
  return a.num_rows == b.num_rows && a.width == b.width && SameBytes(a.labels, b.labels) &&
         SameBytes(a.dense, b.dense) && SameBytes(a.row_lengths, b.row_lengths) &&
         SameBytes(a.cols, b.cols) && SameBytes(a.values, b.values);
}

void CheckSparse(const PartitionData& d, const DatasetSpec& spec) {
  MRTRAIN_CHECK(spec.format == data::DataFormat::kLibsvm ||
                spec.format == data::DataFormat::kCriteo);
  MRTRAIN_CHECK(d.dense.empty());
  MRTRAIN_CHECK(d.row_offsets.size() == static_cast<size_t>(d.num_rows) + 1);
  MRTRAIN_CHECK(d.row_offsets.front() == 0);
  MRTRAIN_CHECK(d.row_offsets.back() == static_cast<int64_t>(d.cols.size()));
  MRTRAIN_CHECK(d.values.size() == d.cols.size());
  if (spec.num_features > 0) MRTRAIN_CHECK(d.num_cols == spec.num_features);
  if (spec.hash_bits > 0) MRTRAIN_CHECK(d.num_cols == int64_t{1} << spec.hash_bits);
  for (int64_t r = 0; r < d.num_rows; ++r) {
    const int64_t begin = d.row_offsets[r];
    const int64_t end = d.row_offsets[r + 1];
    MRTRAIN_CHECK(begin <= end);
    for (int64_t i = begin; i < end; ++i) {
      MRTRAIN_CHECK(d.cols[i] < d.num_cols);
      MRTRAIN_CHECK(i == begin || d.cols[i - 1] < d.cols[i]);
    }
  }
}

void CheckDense(const PartitionData& d, const DatasetSpec& spec) {
  MRTRAIN_CHECK(spec.format != data::DataFormat::kLibsvm &&
                spec.format != data::DataFormat::kCriteo);
  MRTRAIN_CHECK(d.dense.size() == static_cast<uint64_t>(d.num_rows) * d.num_cols);
  MRTRAIN_CHECK(d.row_offsets.empty() && d.cols.empty() && d.values.empty());
}

void CheckPartition(const PartitionData& d, const DatasetSpec& spec) {
  MRTRAIN_CHECK(d.num_rows >= 0 && d.num_cols >= 0);
  MRTRAIN_CHECK(d.labels.size() == static_cast<size_t>(d.num_rows));
  if (d.is_sparse) {
    CheckSparse(d, spec);
  } else {
    CheckDense(d, spec);
  }
  MRTRAIN_CHECK(d.skipped_records >= 0);
  MRTRAIN_CHECK(d.skipped_samples.size() <= static_cast<size_t>(d.skipped_records));
  MRTRAIN_CHECK(d.skipped_samples.size() <= 5);
  if (spec.on_bad_record == BadRecordPolicy::kFail) MRTRAIN_CHECK(d.skipped_records == 0);
  for (const std::string& sample : d.skipped_samples) MRTRAIN_CHECK(!sample.empty());
  MRTRAIN_CHECK(d.MemoryBytes() >= static_cast<int64_t>(sizeof(d)));
  MRTRAIN_CHECK(d.View(d.num_cols).num_rows == d.num_rows);
}

void Append(const PartitionData& d, AllRows* all) {
  all->num_rows += d.num_rows;
  all->skipped += d.skipped_records;
  all->labels.insert(all->labels.end(), d.labels.begin(), d.labels.end());
  if (!d.is_sparse) {
    // Every partition of a dense dataset has the dataset's width, rows or not.
    MRTRAIN_CHECK(all->partitions == 0 || all->width == d.num_cols);
    all->width = d.num_cols;
    all->dense.insert(all->dense.end(), d.dense.begin(), d.dense.end());
  } else {
    all->width = std::max(all->width, d.num_cols);
    for (int64_t r = 0; r < d.num_rows; ++r) {
      all->row_lengths.push_back(d.row_offsets[r + 1] - d.row_offsets[r]);
    }
    all->cols.insert(all->cols.end(), d.cols.begin(), d.cols.end());
    all->values.insert(all->values.end(), d.values.begin(), d.values.end());
  }
  ++all->partitions;
}

// Loads every partition, checking each; the rows when all of them loaded.
std::optional<AllRows> LoadAll(const DatasetSpec& spec) {
  Result<std::unique_ptr<data::Dataset>> dataset = data::Dataset::Open(spec);
  if (!dataset.ok()) {
    MRTRAIN_CHECK(!dataset.status().message().empty());
    return std::nullopt;
  }
  MRTRAIN_CHECK((*dataset)->num_partitions() == spec.num_partitions);
  MRTRAIN_CHECK(!(*dataset)->files().empty());
  AllRows all;
  bool complete = true;
  for (int64_t p = 0; p < spec.num_partitions; ++p) {
    MRTRAIN_CHECK(!(*dataset)->DescribePartition(p).empty());
    Result<PartitionData> part = (*dataset)->LoadPartition(p);
    if (!part.ok()) {
      MRTRAIN_CHECK(!part.status().message().empty());
      complete = false;
      continue;  // the later partitions still get parsed, for coverage
    }
    CheckPartition(*part, spec);
    Append(*part, &all);
  }
  if (!complete) return std::nullopt;
  return all;
}

}  // namespace

void ExerciseDataset(DatasetSpec spec, const std::vector<int64_t>& partition_counts) {
  // A warning per input (gzip files are not split) would drown the fuzzer's own output.
  static const bool quiet = SetLogLevel("error");
  (void)quiet;
  std::optional<AllRows> first_fail, first_skip;
  for (int64_t count : partition_counts) {
    spec.num_partitions = count;
    spec.on_bad_record = BadRecordPolicy::kFail;
    std::optional<AllRows> fail = LoadAll(spec);
    spec.on_bad_record = BadRecordPolicy::kSkip;
    std::optional<AllRows> skip = LoadAll(spec);
    // kFail succeeds exactly when there is nothing to skip.
    MRTRAIN_CHECK(fail.has_value() == (skip.has_value() && skip->skipped == 0));
    if (fail) MRTRAIN_CHECK(SameRows(*fail, *skip));
    if (fail && first_fail) MRTRAIN_CHECK(SameRows(*fail, *first_fail));
    if (skip && first_skip) {
      MRTRAIN_CHECK(SameRows(*skip, *first_skip));
      MRTRAIN_CHECK(skip->skipped == first_skip->skipped);
    }
    if (!first_fail) first_fail = std::move(fail);
    if (!first_skip) first_skip = std::move(skip);
  }
}

std::string WriteTextDataset(const uint8_t* data, size_t size, const std::string& suffix,
                             bool one_file) {
  const int kMaxFiles = one_file ? 1 : 3;
  const std::string folder = ResetScratchFolder("text");
  const uint8_t* end = data + size;
  for (int i = 0; i < kMaxFiles; ++i) {
    const void* nul = i + 1 < kMaxFiles ? std::memchr(data, 0, end - data) : nullptr;
    const uint8_t* stop = nul != nullptr ? static_cast<const uint8_t*>(nul) : end;
    WriteScratchFile("text/part-" + std::to_string(i) + suffix, data, stop - data);
    if (stop == end) break;
    data = stop + 1;
  }
  return folder;
}

}  // namespace mrtrain::fuzz
