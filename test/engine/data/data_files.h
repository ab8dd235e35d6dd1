#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/data/partition_data.h"

namespace mrtrain::data {

// Writes `contents` gzip-compressed to `path` with zlib's gzopen, as a user's gzip would.
void WriteGzip(const std::string& path, const std::string& contents);

// The bytes of an IDX file: magic (0, 0, type, dims.size()), big-endian dims, then `data`.
std::string IdxFile(uint8_t type, const std::vector<uint32_t>& dims, const std::string& data);

// Big-endian float32 bytes, the data of a type 0x0D IDX file.
std::string BigEndianFloats(const std::vector<float>& values);

// Every partition of a dataset, loaded in order; fails the test on an error.
std::vector<PartitionData> LoadAllForTest(const Dataset& dataset);

// The labels of all partitions, concatenated in partition order.
std::vector<float> AllLabels(const std::vector<PartitionData>& parts);

}  // namespace mrtrain::data
