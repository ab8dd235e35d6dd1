#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Parses each partition of a dataset once, on first use, and keeps it for later epochs
// ("parse once"). Thread-safe; concurrent Gets of the same partition parse it once.
// The dataset must outlive the cache.
class PartitionCache {
 public:
  explicit PartitionCache(const Dataset* dataset);

  // The parsed partition, or the error LoadPartition gave (errors are not cached).
  Result<std::shared_ptr<const PartitionData>> Get(int64_t p);

  const Dataset& dataset() const { return *dataset_; }

 private:
  const Dataset* dataset_;
  std::vector<std::unique_ptr<std::mutex>> part_mu_;  // one per partition: parse once
  std::mutex mu_;
  std::vector<std::shared_ptr<const PartitionData>> parts_;  // guarded by mu_
};

}  // namespace mrtrain::data
