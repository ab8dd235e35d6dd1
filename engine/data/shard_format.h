#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/partition_data.h"

namespace mrtrain::data {

// Constants and the header of the binary shard format (grammar in FORMAT.md, "shards"). One
// shard file holds one partition exactly as the text, csv or idx reader produced it, so a job
// reading shards sees the same rows, in the same order, as one parsing the source.

// Little-endian throughout: the arrays are copied out of the mapped file as they lie.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "shards are little-endian");

inline constexpr char kShardMagic[8] = {'M', 'R', 'T', 'S', 'H', 'A', 'R', 'D'};
inline constexpr uint32_t kShardVersion = 1;
// magic, version, header length.
inline constexpr int64_t kShardPreambleBytes = 16;
// Sections start at multiples of this, so a mapped file's arrays are aligned for their type.
inline constexpr int64_t kShardAlignment = 8;
// A header holds names, messages and row runs; far below this for any real partition.
inline constexpr int64_t kMaxShardHeaderBytes = int64_t{64} << 20;
// Shard files are named part-NNNNN.mrs by partition index.
inline constexpr const char* kShardSuffix = ".mrs";

// The dataset spec a shard's rows were parsed with, as (key, value) pairs in a fixed order
// (SourceSpecFields, shard_source_spec.h).
using SpecFields = std::vector<std::pair<std::string, std::string>>;

// "{format=libsvm, path=train.svm, ...}": the fields as a user reads them in a message.
std::string DescribeSpecFields(const SpecFields& fields);

enum class ShardLayout : uint8_t { kDense = 0, kCsr = 1 };

// One array of the body: where it lies in the file and its CRC32C.
struct ShardSection {
  int64_t offset = 0;
  int64_t bytes = 0;
  uint32_t crc = 0;
};

// What a shard's header says. The body's sections follow in a fixed order: labels, then dense
// (kDense) or row_offsets, cols, values (kCsr).
struct ShardHeader {
  uint32_t version = kShardVersion;
  int64_t partition = 0;
  int64_t num_partitions = 1;
  int64_t num_rows = 0;
  int64_t num_cols = 0;
  ShardLayout layout = ShardLayout::kDense;
  int64_t nnz = 0;  // kCsr: stored values
  int64_t skipped_records = 0;
  std::vector<std::string> skipped_samples;
  // The dataset spec the source was parsed with: shards of one set must agree on it.
  SpecFields spec;
  // Where the rows came from, as the reader recorded it (RowSources): files and runs.
  RowSources sources;
  std::vector<ShardSection> sections;
};

// "part-00003.mrs".
std::string ShardFileName(int64_t partition);

// The byte length of section `i` of a shard with this header's shape.
std::vector<int64_t> SectionBytes(const ShardHeader& header);

// The header's bytes (without preamble and CRC), as FORMAT.md lays them out.
std::string EncodeShardHeader(const ShardHeader& header);

// Parses header bytes that passed their CRC. kCorruption naming `file` and the byte offset of
// the field that is out of range or runs past the header's end; every count is checked against
// the bytes left before anything is sized by it.
Result<ShardHeader> DecodeShardHeader(std::string_view bytes, const std::string& file);

// Rounds `offset` up to kShardAlignment.
inline int64_t AlignShardOffset(int64_t offset) {
  return (offset + kShardAlignment - 1) / kShardAlignment * kShardAlignment;
}

}  // namespace mrtrain::data
