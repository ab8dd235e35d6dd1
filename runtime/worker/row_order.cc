#include "runtime/worker/row_order.h"

#include <numeric>

#include "engine/api/random.h"

namespace mrtrain::runtime {

std::vector<int64_t> EpochRowOrder(uint64_t seed, int64_t epoch, int64_t partition,
                                   int64_t num_rows) {
  constexpr uint64_t kRowOrderStream = 0x5EED0;  // apart from init and mapper streams
  std::vector<int64_t> order(num_rows);
  std::iota(order.begin(), order.end(), 0);
  api::RandomStream random(seed, kRowOrderStream, epoch, partition);
  for (int64_t i = num_rows - 1; i > 0; --i) {
    std::swap(order[i], order[random.Below(static_cast<uint64_t>(i) + 1)]);
  }
  return order;
}

std::pair<int64_t, int64_t> RoundRange(int64_t num_rows, int64_t round, int64_t rounds) {
  return {num_rows * round / rounds, num_rows * (round + 1) / rounds};
}

std::shared_ptr<const std::vector<int64_t>> RowOrderCache::Get(int64_t epoch, int64_t partition,
                                                               int64_t num_rows) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = orders_.find({epoch, partition});
    if (it != orders_.end()) return it->second;
  }
  auto order = std::make_shared<const std::vector<int64_t>>(
      EpochRowOrder(seed_, epoch, partition, num_rows));
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = orders_.begin(); it != orders_.end();) {
    it = it->first.first < epoch ? orders_.erase(it) : std::next(it);
  }
  orders_.emplace(std::make_pair(epoch, partition), order);
  return order;
}

}  // namespace mrtrain::runtime
