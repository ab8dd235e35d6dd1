#include "runtime/worker/pulled_rows.h"

namespace mrtrain::runtime {

void PulledRows::Reserve(size_t rows, size_t floats) {
  offset_of_.Reserve(rows);
  values_.reserve(floats);
}

void PulledRows::Add(ParamKey key, const float* values, int64_t length) {
  if (offset_of_.FindOrInsert(key.packed(), static_cast<int64_t>(values_.size())).second) {
    values_.insert(values_.end(), values, values + length);
  }
}

const float* PulledRows::Find(int tensor_id, int64_t id) const {
  if (tensor_id < 0 || id < 0 || static_cast<uint64_t>(id) >= ParamKey::kMaxBlocks) {
    return nullptr;
  }
  const int64_t at = offset_of_.Find(ParamKey(static_cast<uint32_t>(tensor_id), id).packed());
  return at == KeyIndex::kAbsent ? nullptr : values_.data() + at;
}

}  // namespace mrtrain::runtime
