#pragma once

#include <string>
#include <vector>

// Issue 11's sparse benchmarks on the data sets of tools/data/sparse_synthetic.h, each a ratio
// measured in the same run (descriptions and measured figures in bench_main.cc).
namespace mrtrain::bench {

struct SparseBenchOptions {
  std::string tmp_dir;
  // The sizes (1,000,000 rows of 2^20 ids; 10,000,000 criteo rows) instead of the
  // defaults that run in a minute or two on a 2-core machine.
  bool full = false;
  int workers = 2;     // worker processes of the cluster figures
  int epochs = 1;      // criteo: epochs measured (the median counts)
  int max_epochs = 4;  // sparse_accuracy: epochs before giving up on the target
  double target_accuracy = 0.665;
  // `key=value` overrides of the benchmark's job spec (sparse_accuracy and criteo), applied
  // after its own settings: how the settings below were chosen.
  std::vector<std::string> overrides;
};

// sparse_accuracy: time to target_accuracy on the hashed binary set, local mode and `workers`
// worker processes, against `liblinear-train -s 0` on the same files (skipped with a message
// when liblinear-tools is not installed). Returns the process exit code.
int BenchSparseAccuracy(const SparseBenchOptions& options);

// criteo: examples/s of logistic regression over a Criteo-style click log hashed into 2^24,
// converted to shards first, local mode and `workers` worker processes.
int BenchCriteo(const SparseBenchOptions& options);

}  // namespace mrtrain::bench
