#pragma once

#include <cstdint>
#include <vector>

namespace mrtrain::bench {

// The compute floor: the gradients of a softmax-output network (no hidden layer = softmax
// regression) computed by a plain loop of OpenBLAS calls over contiguous in-memory rows, one
// global mini-batch at a time, followed by a plain SGD step. No engine, no shuffle, no copies:
// what the same arithmetic costs with nothing around it.
struct FloorSetup {
  const float* x = nullptr;       // rows x widths[0], row-major
  const float* labels = nullptr;  // rows class indices
  int64_t rows = 0;
  std::vector<int64_t> widths;  // d, hidden..., K
  int64_t rounds = 1;           // mini-batches per epoch
  float learning_rate = 0.01f;
};

// Runs one epoch and returns its wall seconds. Deterministic weights (fixed init).
double RunFloorEpoch(const FloorSetup& setup);

}  // namespace mrtrain::bench
