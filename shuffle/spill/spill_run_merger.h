#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::shuffle {

// Merges spill runs k-way (an external merge sort's last pass) and sums each key's records:
// calls emit(key, sum, length) once per key present in any run, keys ascending. The sum of a
// key is a left fold over its records in (run, position in run) order, with the first record
// copied:
//
//   sum = r0;  sum += r1;  sum += r2;  ...      element by element, in float
//
// which is exactly what the in-memory combiner computes when the records are the emissions in
// the order they came (the first record may be a prefix already folded the same way). Ties
// between runs go to the lower run index, as in GroupSortedRuns (key_grouper.cc).
// `paths` are in spill order; `max_length` is the model's block size. Errors: the readers'
// (kCorruption naming the file and offset, kNotFound), and kCorruption when two records of a
// key differ in length. `emit`'s pointer is valid during the call only.
Status MergeSpillRuns(const std::vector<std::string>& paths, int64_t max_length,
                      const std::function<void(ParamKey, const float*, int64_t)>& emit);

}  // namespace mrtrain::shuffle
