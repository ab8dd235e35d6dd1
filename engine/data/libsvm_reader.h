#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Opens a libsvm dataset (grammar in FORMAT.md): one record per line, "label index:value ...",
// indices 1-based unless spec.zero_based and strictly increasing; labels kept as written (-1/+1
// are not remapped); "#" starts a comment. Blank and comment-only lines are skipped. Rows are
// sparse (CSR); the width is spec.num_features when set (an index at or past it is a bad record),
// else 1 + the largest index in the partition. An index at or past MaxFeatures(spec) is a bad
// record too: one dense row of weights that wide would not fit max_decoded_mb. With
// spec.hash_bits, indices (any 64-bit value) are hashed into 2^hash_bits columns instead
// (feature_hash.h), colliding values summed. Feature values are multiplied by spec.scale when
// it is set.
Result<std::unique_ptr<Dataset>> OpenLibsvmDataset(const DatasetSpec& spec,
                                                   std::vector<std::string> files);

}  // namespace mrtrain::data
