// libFuzzer target for the shard reader (engine/data/shard_reader.h): the binary partition files
// `mrtrain convert` writes and `format: shards` maps.
//
// Input: a mode byte, then the file. With bit 0 of the mode set, the header's CRC is written
// into the file and each section's CRC in the table is replaced by the CRC of the bytes the table
// points at, so mutated headers and bodies get past the checksums and reach the structural
// checks; otherwise the file is taken as it is, which reaches them only through a sound file.
//
// Checks: a file that does not read fails with kCorruption (or kFailedPrecondition for another
// version) naming the file; one that reads is a well-formed partition (sizes, CSR offsets,
// columns increasing and below num_cols), and written back with WriteShard it reads back to the
// same arrays, bit for bit, the same recorded spec and the same row sources, copied or served in
// place (MappedShard::Borrow). Checking a body in place fails exactly when decoding it does.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/data/shard_format.h"
#include "engine/data/shard_reader.h"
#include "engine/data/shard_writer.h"
#include "test/fuzz/scratch_files.h"

namespace {

using mrtrain::data::PartitionData;
using mrtrain::data::ShardHeader;

void FixHeaderCrc(std::string* file) {
  if (file->size() < 16) return;
  uint32_t len = 0;
  std::memcpy(&len, file->data() + 12, 4);
  if (uint64_t{len} + 20 > file->size()) return;
  const uint32_t crc = mrtrain::Crc32c(file->data() + 16, len);
  std::memcpy(&(*file)[16 + len], &crc, 4);
}

template <typename T>
bool SameBytes(const T& a, const T& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

template <typename T>
bool SameArray(const T* a, const std::vector<T>& b) {
  return b.empty() || std::memcmp(a, b.data(), b.size() * sizeof(T)) == 0;
}

void CheckWellFormed(const PartitionData& d) {
  MRTRAIN_CHECK(static_cast<int64_t>(d.labels.size()) == d.num_rows);
  if (!d.is_sparse) {
    MRTRAIN_CHECK(static_cast<int64_t>(d.dense.size()) == d.num_rows * d.num_cols);
    return;
  }
  MRTRAIN_CHECK(static_cast<int64_t>(d.row_offsets.size()) == d.num_rows + 1);
  MRTRAIN_CHECK(d.row_offsets.front() == 0);
  MRTRAIN_CHECK(d.row_offsets.back() == static_cast<int64_t>(d.cols.size()));
  MRTRAIN_CHECK(d.cols.size() == d.values.size());
  for (int64_t r = 0; r < d.num_rows; ++r) {
    MRTRAIN_CHECK(d.row_offsets[r] <= d.row_offsets[r + 1]);
    for (int64_t k = d.row_offsets[r]; k < d.row_offsets[r + 1]; ++k) {
      MRTRAIN_CHECK(d.cols[k] < d.num_cols);
      MRTRAIN_CHECK(k == d.row_offsets[r] || d.cols[k] > d.cols[k - 1]);
    }
  }
}

void CheckRoundTrip(const ShardHeader& h, const PartitionData& d) {
  const std::string path = mrtrain::fuzz::ScratchDir() + "/part-00000.mrs";
  mrtrain::data::ShardIdentity identity{h.partition, h.num_partitions, h.spec};
  const mrtrain::Status written = mrtrain::data::WriteShard(path, identity, d);
  MRTRAIN_CHECK(written.ok());
  auto shard = mrtrain::data::MappedShard::Open(path);
  MRTRAIN_CHECK(shard.ok());
  auto again = shard->Decode();
  MRTRAIN_CHECK(again.ok());
  MRTRAIN_CHECK(again->num_rows == d.num_rows && again->num_cols == d.num_cols);
  MRTRAIN_CHECK(again->is_sparse == d.is_sparse);
  MRTRAIN_CHECK(SameBytes(again->labels, d.labels) && SameBytes(again->dense, d.dense));
  MRTRAIN_CHECK(SameBytes(again->row_offsets, d.row_offsets) && SameBytes(again->cols, d.cols));
  MRTRAIN_CHECK(SameBytes(again->values, d.values));
  MRTRAIN_CHECK(again->skipped_records == d.skipped_records);
  MRTRAIN_CHECK(again->skipped_samples == d.skipped_samples);
  MRTRAIN_CHECK(shard->header().spec == h.spec);
  MRTRAIN_CHECK(again->sources.files == d.sources.files);
  MRTRAIN_CHECK(again->sources.runs.size() == d.sources.runs.size());
  // Served in place (cache: disk), the file reads to the same arrays.
  MRTRAIN_CHECK(shard->CheckBody().ok());
  auto mapped = std::make_shared<const mrtrain::data::MappedShard>(std::move(*shard));
  const PartitionData borrowed = mrtrain::data::MappedShard::Borrow(mapped);
  MRTRAIN_CHECK(borrowed.borrowed.has_value() && borrowed.num_rows == d.num_rows);
  MRTRAIN_CHECK(SameArray(borrowed.label_data(), d.labels));
  if (d.is_sparse) {
    MRTRAIN_CHECK(SameArray(borrowed.row_offset_data(), d.row_offsets));
    MRTRAIN_CHECK(SameArray(borrowed.col_data(), d.cols));
    MRTRAIN_CHECK(SameArray(borrowed.value_data(), d.values));
  } else {
    MRTRAIN_CHECK(SameArray(borrowed.dense_data(), d.dense));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool fix_crcs = (data[0] & 1) != 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (fix_crcs) FixHeaderCrc(&file);
  const std::string name = "fuzz.mrs";
  auto header = mrtrain::data::ReadShardHeader(file, name);
  if (!header.ok()) {
    MRTRAIN_CHECK(header.status().code() == mrtrain::StatusCode::kCorruption ||
                  header.status().code() == mrtrain::StatusCode::kFailedPrecondition);
    MRTRAIN_CHECK(header.status().message().rfind(name + ": ", 0) == 0);
    return 0;
  }
  if (fix_crcs) {
    for (auto& s : header->sections) s.crc = mrtrain::Crc32c(file.data() + s.offset, s.bytes);
  }
  auto part = mrtrain::data::DecodeShardBody(file, *header, name);
  // Checking in place (what a bounded cache does once per file) fails with the same message.
  const mrtrain::Status checked = mrtrain::data::CheckShardBody(file, *header, name);
  MRTRAIN_CHECK(checked.ok() == part.ok());
  MRTRAIN_CHECK(part.ok() || checked.message() == part.status().message());
  if (!part.ok()) {
    MRTRAIN_CHECK(part.status().code() == mrtrain::StatusCode::kCorruption);
    MRTRAIN_CHECK(part.status().message().rfind(name + ": ", 0) == 0);
    return 0;
  }
  CheckWellFormed(*part);
  CheckRoundTrip(*header, *part);
  return 0;
}
