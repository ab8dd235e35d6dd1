#include "test/engine/data/shard_test_files.h"

#include <cstdio>
#include <cstring>

#include <catch2/catch.hpp>

#include "engine/data/shard_converter.h"

namespace mrtrain::data {

DatasetSpec SmallLibsvmForTest(const std::string& dir, int rows, int64_t partitions) {
  std::string text = "# a comment\n";
  for (int r = 0; r < rows; ++r) {
    text += (r % 3 == 0 ? "+1" : "-1");
    for (int k = 1; k <= 1 + r % 5; ++k) {
      text += " " + std::to_string(k * (1 + r % 7)) + ":" + std::to_string(0.25 * (r + k));
    }
    text += r == 7 ? " 3:bad\n" : "\n";
  }
  DatasetSpec spec;
  spec.path = dir + "/train.svm";
  spec.format = DataFormat::kLibsvm;
  spec.num_partitions = partitions;
  spec.on_bad_record = BadRecordPolicy::kSkip;
  spec.max_skipped_fraction = 0.5;
  std::FILE* f = std::fopen(spec.path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
  std::fclose(f);
  return spec;
}

DatasetSpec ConvertForTest(const DatasetSpec& source, const std::string& out_dir) {
  ConvertOptions options;
  options.threads = 2;
  auto summary = ConvertToShards(source, out_dir, options);
  INFO((summary.ok() ? "" : summary.status().message()));
  REQUIRE(summary.ok());
  DatasetSpec shards = source;
  shards.path = out_dir;
  shards.format = DataFormat::kShards;
  return shards;
}

void RequireSamePartition(const PartitionData& a, const PartitionData& b) {
  // Through the accessors: either side may be owned or borrowed from a mapped shard.
  auto same_bytes = [](const auto* x, const auto* y, int64_t n) {
    return n == 0 || std::memcmp(x, y, static_cast<size_t>(n) * sizeof(x[0])) == 0;
  };
  REQUIRE(a.num_rows == b.num_rows);
  REQUIRE(a.num_cols == b.num_cols);
  REQUIRE(a.is_sparse == b.is_sparse);
  CHECK(same_bytes(a.label_data(), b.label_data(), a.num_rows));
  if (a.is_sparse) {
    REQUIRE(same_bytes(a.row_offset_data(), b.row_offset_data(), a.num_rows + 1));
    const int64_t nnz = a.row_offset_data()[a.num_rows];
    CHECK(same_bytes(a.col_data(), b.col_data(), nnz));
    CHECK(same_bytes(a.value_data(), b.value_data(), nnz));
  } else {
    CHECK(same_bytes(a.dense_data(), b.dense_data(), a.num_rows * a.num_cols));
  }
  CHECK(a.skipped_records == b.skipped_records);
  CHECK(a.skipped_samples == b.skipped_samples);
  CHECK(a.sources.files == b.sources.files);
  REQUIRE(a.sources.runs.size() == b.sources.runs.size());
  for (size_t i = 0; i < a.sources.runs.size(); ++i) {
    CHECK(a.sources.runs[i].first_row == b.sources.runs[i].first_row);
    CHECK(a.sources.runs[i].start == b.sources.runs[i].start);
    CHECK(a.sources.runs[i].file == b.sources.runs[i].file);
  }
}

}  // namespace mrtrain::data
