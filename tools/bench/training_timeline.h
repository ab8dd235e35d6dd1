#pragma once

#include <optional>
#include <vector>

// What the sparse benchmarks read off a run's progress reports: when a target accuracy was
// first reached, and what one round costs. Pure functions, so they are tested on made-up reports.
namespace mrtrain::bench {

// One epoch's report as the benchmarks see it: seconds since the run started (data loading,
// rounds and evaluations so far) and the test accuracy after the epoch, when there is a test set.
struct EpochPoint {
  double elapsed_sec = 0;
  std::optional<double> test_accuracy;
};

// The elapsed seconds of the first epoch whose test accuracy is at least `target`; nothing when
// no epoch reached it (or none had a test accuracy). Epoch granularity: the run is only
// evaluated at the end of an epoch.
std::optional<double> TimeToAccuracy(const std::vector<EpochPoint>& epochs, double target);

// The median seconds of one round, from the elapsed seconds since the run started at the end of
// each round (in order). The first round is left out: it includes loading the data and setting
// the job up. Nothing with fewer than two rounds.
std::optional<double> MedianRoundSeconds(const std::vector<double>& round_ends);

}  // namespace mrtrain::bench
