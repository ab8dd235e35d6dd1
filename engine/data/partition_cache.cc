#include "engine/data/partition_cache.h"

#include <chrono>

#include "engine/base/log.h"

namespace mrtrain::data {

PartitionCache::PartitionCache(const Dataset* dataset)
    : dataset_(dataset), parts_(dataset->num_partitions()) {
  part_mu_.reserve(dataset->num_partitions());
  for (int64_t p = 0; p < dataset->num_partitions(); ++p) {
    part_mu_.push_back(std::make_unique<std::mutex>());
  }
}

Result<std::shared_ptr<const PartitionData>> PartitionCache::Get(int64_t p) {
  if (p < 0 || p >= dataset_->num_partitions()) {
    return InvalidArgumentError("partition " + std::to_string(p) + " is out of range [0, " +
                                std::to_string(dataset_->num_partitions()) + ")");
  }
  // The per-partition lock makes a second caller wait for the first parse instead of
  // repeating it, while other partitions parse in parallel; mu_ only guards the slots.
  std::lock_guard<std::mutex> parse_lock(*part_mu_[p]);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (parts_[p] != nullptr) return parts_[p];
  }
  const auto start = std::chrono::steady_clock::now();
  MRTRAIN_ASSIGN_OR_RETURN(PartitionData data, dataset_->LoadPartition(p));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto log = Logger("data");
  if (log->should_log(spdlog::level::debug)) {
    log->debug("loaded partition {} ({}): {} rows, {} bytes in {:.3f}s", p,
               dataset_->DescribePartition(p), data.num_rows, data.MemoryBytes(), seconds);
  }
  if (data.skipped_records > 0) {
    log->warn("partition {} ({}): skipped {} bad records, first: {}", p,
              dataset_->DescribePartition(p), data.skipped_records, data.skipped_samples[0]);
  }
  auto part = std::make_shared<const PartitionData>(std::move(data));
  std::lock_guard<std::mutex> lock(mu_);
  parts_[p] = part;
  return part;
}

}  // namespace mrtrain::data
