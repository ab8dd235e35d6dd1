#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/partition_data.h"

namespace mrtrain::data {

// kShards: the binary files `mrtrain convert` writes from one of the others (shard_dataset.h).
// kCriteo: the Criteo-style click-log TSV (criteo_reader.h).
enum class DataFormat { kLibsvm, kCsv, kIdx, kShards, kCriteo };
enum class BadRecordPolicy { kFail, kSkip };
// Where a worker keeps a dataset's decoded partitions between epochs: all in memory, or within
// the worker's memory budget, re-reading the rest each time they are needed (partition_cache.h).
enum class CacheMode { kMemory, kDisk };
// What a model needs of the labels: any finite number, 0 or 1 (-1 read as 0, the libsvm
// spelling), or a class index.
enum class LabelKind { kAny, kBinary, kClass };

// Far more tasks than any cluster runs; beyond it, per-partition tables would eat memory.
inline constexpr int64_t kMaxPartitions = int64_t{1} << 20;
// The default and the largest max_decoded_mb (1 TiB).
inline constexpr int64_t kDefaultMaxDecodedMb = 1024;
inline constexpr int64_t kMaxDecodedMbLimit = int64_t{1} << 20;
// The widest feature hashing: columns are uint32, and 2^32 of them would not leave 1 + the
// largest column representable.
inline constexpr int kMaxHashBits = 31;

// Parses "libsvm", "csv", "idx", "shards", "criteo"; kInvalidArgument lists the allowed names
// otherwise.
Result<DataFormat> ParseDataFormat(const std::string& name);
const char* DataFormatName(DataFormat format);

// Where a dataset is and how to read it: the `data.train` (or test, validation) section of a
// job spec.
struct DatasetSpec {
  std::string path;  // a file, a glob (*, ?, [..]) or a folder (its regular files, except
                     // names starting with '.' or '_', like Spark's _SUCCESS and .crc files)
  DataFormat format = DataFormat::kCsv;
  int64_t num_partitions = 1;  // fixed by the job, never derived from the number of workers
  BadRecordPolicy on_bad_record = BadRecordPolicy::kFail;
  CacheMode cache = CacheMode::kMemory;  // how rows are read changes no result

  // csv
  bool csv_header = false;
  std::string label_column = "0";  // a column name (needs a header) or a 0-based index;
                                   // negative indices count from the end (-1: last column)
  char delimiter = ',';

  // libsvm: the feature count; 0 means 1 + the largest index in the data.
  int64_t num_features = 0;
  bool zero_based = false;  // libsvm indices start at 1 unless this is set

  // libsvm and criteo: when > 0, features are hashed into 2^hash_bits columns (FORMAT.md,
  // "Feature hashing"), and every partition is that wide. Required for criteo; excludes
  // num_features.
  int hash_bits = 0;

  // idx: the labels file (idx1); the images are `path`.
  std::string labels_path;
  // Every feature value is multiplied by this; 0 means the format's default (1/255 for
  // unsigned-byte idx files, 1 otherwise).
  double scale = 0;

  // The memory budget of one partition, in MiB: its decoded values (4 bytes each, plus 8 per
  // sparse row) may not pass it, nor may a text line pass a quarter of it, nor a libsvm feature
  // index a quarter of it in floats (the width of one dense row of weights). Inputs that would
  // fail with kInvalidArgument naming the file (and line) and the limit, before the memory is
  // taken: a small gzip file can decode to far more than any machine holds.
  int64_t max_decoded_mb = kDefaultMaxDecodedMb;

  // What the model needs of each label; a record whose label breaks it is a bad record.
  LabelKind label_kind = LabelKind::kAny;
  int64_t num_classes = 0;  // kClass: labels are whole numbers in [0, num_classes)
  std::string label_rule;   // why, for messages: "model.classes is 10"

  // The most bad records skipped under kSkip, as a fraction of all records of the dataset. The
  // readers count per partition; the job checks the sum (runtime/job/job_setup.h).
  double max_skipped_fraction = 0.01;
};

// The byte limits that max_decoded_mb implies (see DatasetSpec).
int64_t DecodedBudgetBytes(const DatasetSpec& spec);
int64_t MaxLineBytes(const DatasetSpec& spec);
int64_t MaxFeatures(const DatasetSpec& spec);

// kCorruption saying why `label` breaks the spec's label rule; Ok when it does not.
Status CheckLabel(const DatasetSpec& spec, float label);

// A dataset cut into a fixed number of partitions. Text formats (csv, libsvm) split the byte
// stream of all files, in name order, into num_partitions equal ranges aligned to record
// boundaries: a record belongs to the range holding its first byte. idx splits the records
// into equal contiguous ranges. gzip files (.gz) are read through zlib; a text .gz file is never
// split but belongs whole to one partition (see text_splits.h). Thread-safe: LoadPartition
// may run concurrently for different partitions.
class Dataset {
 public:
  // Resolves the files and the partition boundaries. Fails with kNotFound when the path
  // matches no file, kInvalidArgument for a spec that cannot work (for example more
  // partitions than records for idx, or a label column name without a header), kCorruption
  // for a bad idx header.
  static Result<std::unique_ptr<Dataset>> Open(const DatasetSpec& spec);

  virtual ~Dataset() = default;

  const DatasetSpec& spec() const { return spec_; }
  int64_t num_partitions() const { return spec_.num_partitions; }
  const std::vector<std::string>& files() const { return files_; }

  // Parses partition p. A bad record fails with kCorruption naming the file, the 1-based line
  // (text) or record (idx) and what was expected, unless on_bad_record is kSkip, in which case
  // it is counted in skipped_records. REQUIRES: 0 <= p < num_partitions().
  virtual Result<PartitionData> LoadPartition(int64_t p) const = 0;

  // Partition p for a cache that lets partitions go and asks for them again (cache: disk): the
  // same rows as LoadPartition, but a format whose rows lie ready in a file serves them in
  // place (PartitionData::borrowed) rather than copying them, and may check the file once per
  // job rather than on every read (shards: shard_dataset.h). Others just load.
  virtual Result<PartitionData> BorrowPartition(int64_t p) const { return LoadPartition(p); }

  // Human-readable extent of partition p, for error messages ("a.csv bytes [0, 4096)").
  virtual std::string DescribePartition(int64_t p) const = 0;

 protected:
  Dataset(DatasetSpec spec, std::vector<std::string> files)
      : spec_(std::move(spec)), files_(std::move(files)) {}

 private:
  DatasetSpec spec_;
  std::vector<std::string> files_;
};

// Where row `row` of a partition that LoadPartition returned came from, as a user finds it in
// their data: "/data/train.csv line 1234" (lines counted from 1, header, blank and comment lines
// included) or "/data/train-images-idx3-ubyte record index 17" (from 0, as FORMAT.md counts).
// Text rows keep byte offsets, so this reads the row's file up to it: call it to report an error.
// When the file cannot be read any more, it names the byte offset instead. nullopt for a row
// without a recorded source (a partition built in memory, or a copy made by Gather).
// REQUIRES: 0 <= row < partition.num_rows.
std::optional<std::string> DescribeRow(const PartitionData& partition, int64_t row);

// Expands a path, glob or folder into regular files sorted by byte order (not the locale's), so
// every process sees the same order. A path naming an existing file or folder is not read as a
// glob. kNotFound when nothing matches.
Result<std::vector<std::string>> ResolveFiles(const std::string& path);

}  // namespace mrtrain::data
