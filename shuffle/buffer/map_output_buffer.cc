#include "shuffle/buffer/map_output_buffer.h"

#include <algorithm>
#include <string>

namespace mrtrain::shuffle {

MapOutputBuffer::MapOutputBuffer(const ModelLayout* layout, int64_t budget_bytes)
    : layout_(layout), budget_bytes_(budget_bytes) {}

Status MapOutputBuffer::Add(ParamKey key, const float* values) {
  if (!layout_->IsValid(key)) {
    return InvalidArgumentError("emitted key (tensor " + std::to_string(key.tensor()) +
                                ", block " + std::to_string(key.block()) +
                                ") is not part of the model");
  }
  const int64_t n = layout_->Range(key).length;
  auto it = offset_of_.find(key);
  if (it != offset_of_.end()) {
    float* acc = arena_.data() + it->second;
    for (int64_t i = 0; i < n; ++i) acc[i] += values[i];
    return Status::Ok();
  }
  const int64_t new_bytes = static_cast<int64_t>((arena_.size() + n) * sizeof(float));
  if (new_bytes > budget_bytes_) {
    return FailedPreconditionError(
        "map output would take " + std::to_string(new_bytes) + " bytes, over shuffle.buffer_bytes=" +
        std::to_string(budget_bytes_) + " (adding tensor " + std::to_string(key.tensor()) +
        " block " + std::to_string(key.block()) + ")");
  }
  offset_of_.emplace(key, static_cast<int64_t>(arena_.size()));
  keys_.push_back(key);
  arena_.insert(arena_.end(), values, values + n);
  return Status::Ok();
}

std::vector<Run> MapOutputBuffer::Finish(const Partitioner& partitioner) {
  std::vector<ParamKey> order = keys_;
  if (partitioner.sorted()) std::sort(order.begin(), order.end());
  std::vector<Run> runs(partitioner.num_shards());
  for (ParamKey key : order) {
    runs[partitioner.ShardOf(key)].Append(key, arena_.data() + offset_of_[key],
                                          layout_->Range(key).length);
  }
  keys_.clear();
  offset_of_.clear();
  arena_.clear();
  return runs;
}

}  // namespace mrtrain::shuffle
