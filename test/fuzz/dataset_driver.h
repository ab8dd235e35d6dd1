#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/dataset.h"

namespace mrtrain::fuzz {

// Drives one dataset spec, as written to scratch files by a fuzz target, through
// Dataset::Open and LoadPartition for each of `partition_counts` under both bad-record policies
// (spec.num_partitions and spec.on_bad_record are ignored), and aborts through MRTRAIN_CHECK
// when the result breaks an invariant that callers rely on:
//   - a loaded partition is well formed: labels.size() == num_rows; dense data holds
//     num_rows * num_cols floats; CSR offsets start at 0, never decrease and end at
//     cols.size() == values.size(), with columns increasing within a row and below num_cols;
//     nothing is skipped under kFail;
//   - records belong to exactly one partition, so for one policy every partition count whose
//     partitions all load gives the same rows, bit for bit, in the same order;
//   - kFail loads every partition exactly when kSkip does with no record skipped, and then
//     both give the same rows.
// Errors themselves are expected (the input is arbitrary) and only need a message.
void ExerciseDataset(data::DatasetSpec spec, const std::vector<int64_t>& partition_counts);

// Writes the input of a text-format target as the files of a dataset folder and returns the
// folder. Unless `one_file`, the bytes are cut at NUL bytes (which no text record holds) into
// at most three files, part-0<suffix>, part-1<suffix>, ..., the last one keeping any further
// NULs, so that one input can test a dataset that spans files, with a header per file and
// partitions across file ends; `one_file` keeps them whole (a real gzip stream has NULs).
std::string WriteTextDataset(const uint8_t* data, size_t size, const std::string& suffix,
                             bool one_file);

}  // namespace mrtrain::fuzz
