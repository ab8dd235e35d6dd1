#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::tools {

// Synthetic datasets with known true weights, for tests at any size and for benchmarks.
struct SyntheticSpec {
  enum class Task { kRegression, kBinary, kMulticlass };
  Task task = Task::kRegression;
  int64_t rows = 1000;
  int64_t features = 10;
  int classes = 2;       // kMulticlass
  double noise = 0.01;   // standard-ish deviation of label noise (uniform, scaled)
  double density = 1.0;  // fraction of non-zero features per row; < 1 writes sparse rows
  uint64_t seed = 1;
};

// The true model: weights row-major [features x outputs] and one bias per output, where
// outputs is 1 (regression, binary) or classes.
struct SyntheticTruth {
  int64_t outputs = 1;
  std::vector<float> weights;
  std::vector<float> bias;
};

// Writes rows as "label,f0,f1,..." (csv, no header) or "label i:v ..." (libsvm, 1-based).
// Deterministic in the spec. kIOError when the file cannot be written.
Result<SyntheticTruth> WriteSyntheticCsv(const std::string& path, const SyntheticSpec& spec);
Result<SyntheticTruth> WriteSyntheticLibsvm(const std::string& path, const SyntheticSpec& spec);

}  // namespace mrtrain::tools
