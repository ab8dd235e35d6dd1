#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Opens a Criteo-style TSV dataset (grammar in FORMAT.md): one record per line, a 0/1 label, 13
// integer fields and 26 categorical fields, tab-separated, any of the 39 empty when missing.
// Each present field becomes one binary feature: its column and token hashed into
// 2^spec.hash_bits columns (feature_hash.h); integers v > 2 are first turned into
// floor(ln(v)^2). Missing fields give no feature. Rows are sparse (CSR), 2^hash_bits wide.
// REQUIRES: spec.hash_bits in [1, kMaxHashBits] (Dataset::Open checks it).
Result<std::unique_ptr<Dataset>> OpenCriteoDataset(const DatasetSpec& spec,
                                                   std::vector<std::string> files);

}  // namespace mrtrain::data
