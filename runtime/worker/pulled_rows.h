#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/key_index.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::runtime {

// The rows of row-sparse tensors pulled for one task, looked up by (tensor, row id): what
// api::ParamsView::Row reads. Not thread-safe to fill; lookups are read-only.
class PulledRows : public api::RowSource {
 public:
  // Makes room for `rows` rows of `floats` floats in all, so that adding them allocates once.
  void Reserve(size_t rows, size_t floats);
  // Keeps a copy of `length` floats as row key.block() of tensor key.tensor(). A key added
  // again keeps its first values.
  void Add(ParamKey key, const float* values, int64_t length);
  // Called for every nonzero of every row a mapper reads: one flat-table probe.
  const float* Find(int tensor_id, int64_t id) const override;
  size_t size() const { return offset_of_.size(); }

 private:
  KeyIndex offset_of_;  // packed key -> offset in values_
  std::vector<float> values_;
};

// Fills `out` with the current values of row keys `keys` (ascending, distinct), as of the
// parameters the task reads. Set by the worker; errors name the shard host that failed.
using RowFetcher = std::function<Status(const std::vector<ParamKey>& keys, PulledRows* out)>;

}  // namespace mrtrain::runtime
