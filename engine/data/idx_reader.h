#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Opens an IDX dataset (the MNIST family): `files` holds the one images file, and
// spec.labels_path names the labels file. Both may be gzipped. Grammar in FORMAT.md.
// Images have ndims >= 2 (0x00000803 for MNIST) and are flattened into dense rows; labels
// have ndims == 1 (0x00000801) and the same count. Records are split into num_partitions
// equal contiguous ranges. Features are multiplied by spec.scale, by default 1/255 for
// unsigned bytes and 1 for float32; labels are kept as stored.
//
// Open reads only the headers and checks them against the files' sizes: kCorruption for a bad
// magic, a plain file of the wrong size, or a gzip file too small to hold what its header
// claims even at deflate's highest ratio; kInvalidArgument for a missing labels_path, several
// files, mismatched counts or more partitions than records. LoadPartition reads only up to its
// range's end. A gzip file must be decompressed from its start, so a partition resumes from
// the stream an earlier partition of this dataset left parked (StreamCache): loading
// partitions in increasing order decompresses each file about once per concurrent loader;
// in the worst order, (P + 1) / 2 times. Errors name the file and the 0-based record index.
Result<std::unique_ptr<Dataset>> OpenIdxDataset(const DatasetSpec& spec,
                                                std::vector<std::string> files);

}  // namespace mrtrain::data
