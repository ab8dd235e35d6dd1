#include "tools/bench/training_timeline.h"

#include <algorithm>

namespace mrtrain::bench {

std::optional<double> TimeToAccuracy(const std::vector<EpochPoint>& epochs, double target) {
  for (const EpochPoint& e : epochs) {
    if (e.test_accuracy && *e.test_accuracy >= target) return e.elapsed_sec;
  }
  return std::nullopt;
}

std::optional<double> MedianRoundSeconds(const std::vector<double>& round_ends) {
  if (round_ends.size() < 2) return std::nullopt;
  std::vector<double> rounds;
  for (size_t i = 1; i < round_ends.size(); ++i) {
    rounds.push_back(round_ends[i] - round_ends[i - 1]);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

}  // namespace mrtrain::bench
