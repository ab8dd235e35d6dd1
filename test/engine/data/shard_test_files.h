#pragma once

#include <string>

#include "engine/data/dataset.h"
#include "engine/data/partition_data.h"

namespace mrtrain::data {

// A small libsvm dataset of `rows` rows with varying widths and a skipped bad record, written
// to `dir`/train.svm; returns its spec with `partitions` partitions.
DatasetSpec SmallLibsvmForTest(const std::string& dir, int rows, int64_t partitions);

// Converts `source` into `out_dir` with 2 threads and returns the shards' spec (same partition
// count); fails the test on an error.
DatasetSpec ConvertForTest(const DatasetSpec& source, const std::string& out_dir);

// Fails the test unless the two partitions hold the same rows, bit for bit, and the same
// skipped counts and row sources. Either may be owned or borrowed (PartitionData::borrowed).
void RequireSamePartition(const PartitionData& a, const PartitionData& b);

}  // namespace mrtrain::data
