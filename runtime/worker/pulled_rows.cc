#include "runtime/worker/pulled_rows.h"

namespace mrtrain::runtime {

void PulledRows::Add(ParamKey key, const float* values, int64_t length) {
  offset_of_[key.packed()] = static_cast<int64_t>(values_.size());
  values_.insert(values_.end(), values, values + length);
}

const float* PulledRows::Find(int tensor_id, int64_t id) const {
  if (tensor_id < 0 || id < 0 || static_cast<uint64_t>(id) >= ParamKey::kMaxBlocks) {
    return nullptr;
  }
  auto it = offset_of_.find(ParamKey(static_cast<uint32_t>(tensor_id), id).packed());
  return it == offset_of_.end() ? nullptr : values_.data() + it->second;
}

}  // namespace mrtrain::runtime
