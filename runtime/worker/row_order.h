#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace mrtrain::runtime {

// The order in which an epoch visits a partition's rows: a permutation seeded by
// (seed, epoch, partition), so every attempt on every worker visits the same rows in the same
// rounds. Round r of R takes positions [r*n/R, (r+1)*n/R) of the permutation.
std::vector<int64_t> EpochRowOrder(uint64_t seed, int64_t epoch, int64_t partition,
                                   int64_t num_rows);

// [begin, end) positions of round `round` of `rounds` in a partition of num_rows rows.
std::pair<int64_t, int64_t> RoundRange(int64_t num_rows, int64_t round, int64_t rounds);

// Keeps the permutations of the current epoch so the rounds of an epoch compute each once.
// Thread-safe.
class RowOrderCache {
 public:
  explicit RowOrderCache(uint64_t seed) : seed_(seed) {}

  // The permutation for (epoch, partition); drops those of earlier epochs.
  std::shared_ptr<const std::vector<int64_t>> Get(int64_t epoch, int64_t partition,
                                                  int64_t num_rows);

 private:
  const uint64_t seed_;
  std::mutex mu_;
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const std::vector<int64_t>>>
      orders_;  // guarded by mu_
};

}  // namespace mrtrain::runtime
