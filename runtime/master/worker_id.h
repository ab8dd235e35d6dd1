#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mrtrain::runtime {

// A worker as the master numbers it (Welcome.worker_id): typed, so a worker is never mixed up
// with a shard, a partition or a task index in the master's maps and steps.
struct WorkerId {
  uint32_t value = 0;

  // The TaskScheduler's name for the worker (its decimal number).
  std::string ToString() const { return std::to_string(value); }
  // The worker a TaskScheduler name stands for (one made by ToString).
  static WorkerId FromString(const std::string& name) {
    return WorkerId{static_cast<uint32_t>(std::stoul(name))};
  }

  // A per-target step's target that is a worker (spec and start steps).
  static WorkerId FromTarget(int64_t target) { return WorkerId{static_cast<uint32_t>(target)}; }

  friend bool operator==(WorkerId a, WorkerId b) { return a.value == b.value; }
  friend bool operator!=(WorkerId a, WorkerId b) { return a.value != b.value; }
  friend bool operator<(WorkerId a, WorkerId b) { return a.value < b.value; }
  friend bool operator>(WorkerId a, WorkerId b) { return a.value > b.value; }
  friend bool operator<=(WorkerId a, WorkerId b) { return a.value <= b.value; }
  friend bool operator>=(WorkerId a, WorkerId b) { return a.value >= b.value; }
};

}  // namespace mrtrain::runtime

namespace std {
template <>
struct hash<mrtrain::runtime::WorkerId> {
  size_t operator()(mrtrain::runtime::WorkerId id) const noexcept {
    return hash<uint32_t>()(id.value);
  }
};
}  // namespace std
