#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// How far a conversion has got, reported after each partition is written.
struct ConvertProgress {
  int64_t partitions_done = 0;
  int64_t num_partitions = 0;
  int64_t rows = 0;           // in the partitions done
  int64_t bytes_written = 0;  // their shard files' sizes
};

struct ConvertOptions {
  int threads = 1;  // partitions parsed and written at once; each holds one partition in memory
  // Called after each partition, serialised (never two at once), on the thread that wrote it.
  std::function<void(const ConvertProgress&)> on_progress;
};

struct ConvertSummary {
  ConvertProgress totals;
  int64_t skipped_records = 0;     // bad records dropped under on_bad_record: skip
  std::vector<std::string> files;  // the shard files, by partition
};

// Parses each partition of the dataset `spec` names, once, with its own reader, and writes it to
// `out_dir`/part-NNNNN.mrs (WriteShard: atomic). The shards record SourceSpecFields(spec); `format:
// shards` on `out_dir` then reads the same rows without parsing. `out_dir` is created if missing
// and must hold no visible file: a set never mixes conversions. Fails with the reader's error
// (file:line) or the writer's (kIOError naming the file); then every shard this call wrote is
// removed again, so no later run can read a partial set as whole. kInvalidArgument when spec.format
// is already kShards.
Result<ConvertSummary> ConvertToShards(const DatasetSpec& spec, const std::string& out_dir,
                                       const ConvertOptions& options);

}  // namespace mrtrain::data
