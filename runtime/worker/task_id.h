#pragma once

#include <cstdint>
#include <string>

namespace mrtrain::runtime {

// Names one attempt of one map task: (epoch, round, partition, attempt). Everything a task
// computes depends on the first three only, so any attempt gives the same bytes.
struct TaskId {
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t partition = 0;
  int attempt = 0;

  std::string ToString() const {
    return "map task (epoch " + std::to_string(epoch) + ", round " + std::to_string(round) +
           ", partition " + std::to_string(partition) + ", attempt " + std::to_string(attempt) +
           ")";
  }
};

}  // namespace mrtrain::runtime
