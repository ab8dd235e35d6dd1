#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::runtime {

// The rows of row-sparse tensors pulled for one task, looked up by (tensor, row id): what
// api::ParamsView::Row reads. Not thread-safe to fill; lookups are read-only.
class PulledRows : public api::RowSource {
 public:
  // Keeps a copy of `length` floats as row key.block() of tensor key.tensor().
  void Add(ParamKey key, const float* values, int64_t length);
  const float* Find(int tensor_id, int64_t id) const override;
  size_t size() const { return offset_of_.size(); }

 private:
  std::unordered_map<uint64_t, int64_t> offset_of_;  // packed key -> offset in values_
  std::vector<float> values_;
};

// Fills `out` with the current values of row keys `keys` (ascending, distinct), as of the
// parameters the task reads. Set by the worker; errors name the shard host that failed.
using RowFetcher = std::function<Status(const std::vector<ParamKey>& keys, PulledRows* out)>;

}  // namespace mrtrain::runtime
