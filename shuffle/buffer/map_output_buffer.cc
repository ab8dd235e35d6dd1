#include "shuffle/buffer/map_output_buffer.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace mrtrain::shuffle {

MapOutputBuffer::MapOutputBuffer(const ModelLayout* layout, const Partitioner* partitioner,
                                 int64_t budget_bytes)
    : layout_(layout),
      partitioner_(partitioner),
      budget_bytes_(budget_bytes),
      runs_(partitioner->num_shards()) {
  // Reserve each shard's share of the model up front (capped by the budget): dense models
  // emit all of it, and growing a vector of that size by doubling would copy it twice more.
  // Pages reserved but never written are never touched, so sparse models pay only address
  // space.
  std::vector<int64_t> floats(runs_.size(), 0);
  for (ParamKey key : layout->keys()) floats[partitioner->ShardOf(key)] += layout->Range(key).length;
  for (size_t s = 0; s < runs_.size(); ++s) {
    runs_[s].values.reserve(std::min<int64_t>(floats[s], budget_bytes / sizeof(float)));
  }
}

Status MapOutputBuffer::Add(ParamKey key, const float* values) {
  if (!layout_->IsValid(key)) {
    return InvalidArgumentError("emitted key (tensor " + std::to_string(key.tensor()) + ", block " +
                                std::to_string(key.block()) + ") is not part of the model");
  }
  const int64_t n = layout_->Range(key).length;
  auto it = slot_of_.find(key);
  if (it != slot_of_.end()) {
    float* acc = runs_[it->second.shard].values.data() + it->second.offset;
    for (int64_t i = 0; i < n; ++i) acc[i] += values[i];
    return Status::Ok();
  }
  const int64_t new_bytes = bytes_ + n * static_cast<int64_t>(sizeof(float));
  if (new_bytes > budget_bytes_) {
    return FailedPreconditionError(
        "map output would take " + std::to_string(new_bytes) +
        " bytes, over shuffle.buffer_bytes=" + std::to_string(budget_bytes_) + " (adding tensor " +
        std::to_string(key.tensor()) + " block " + std::to_string(key.block()) + ")");
  }
  const int shard = partitioner_->ShardOf(key);
  Run& run = runs_[shard];
  slot_of_.emplace(key, Slot{shard, static_cast<int64_t>(run.values.size())});
  run.Append(key, values, n);
  bytes_ = new_bytes;
  return Status::Ok();
}

namespace {

// The same run with its keys ascending (and their values moved along).
Run Sorted(const Run& run) {
  std::vector<int64_t> order(run.num_keys());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return run.keys[a] < run.keys[b]; });
  Run sorted;
  sorted.keys.reserve(run.keys.size());
  sorted.offsets.reserve(run.offsets.size());
  sorted.values.reserve(run.values.size());
  for (int64_t i : order) sorted.Append(run.keys[i], run.ValuesOf(i), run.LengthOf(i));
  return sorted;
}

bool IsSorted(const Run& run) { return std::is_sorted(run.keys.begin(), run.keys.end()); }

}  // namespace

std::vector<Run> MapOutputBuffer::Finish() {
  std::vector<Run> out(runs_.size());
  for (size_t s = 0; s < runs_.size(); ++s) {
    // Dense models emit keys in ascending order already; sort only when they are not.
    if (partitioner_->sorted() && !IsSorted(runs_[s])) {
      out[s] = Sorted(runs_[s]);
    } else {
      out[s] = std::move(runs_[s]);
    }
    runs_[s] = Run();
  }
  slot_of_.clear();
  bytes_ = 0;
  return out;
}

}  // namespace mrtrain::shuffle
