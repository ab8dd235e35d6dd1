#pragma once

#include <cstdint>

#include "engine/api/views.h"

namespace mrtrain::api {

// What a reducer knows when it updates one block of parameters.
struct UpdateContext {
  int64_t step = 0;          // 1-based: the number of updates so far, this one included
  double learning_rate = 0;  // after the job's schedule
  int tensor_id = 0;
  int64_t offset = 0;  // where this block starts within its tensor
  const TensorSpec* spec = nullptr;
};

// An update rule: turns the gradient of one block into new parameters. The engine has already
// divided the summed gradient by the number of examples and added L2 (for weights), and applies
// L1 afterwards when the job asks for it. One instance may serve many blocks: keep per-element
// state only in `slots`, which the engine stores, shards and checkpoints. Called from one thread
// at a time per instance. May throw (anything); the task then fails with the message.
class Reducer {
 public:
  virtual ~Reducer() = default;

  // How many float arrays of per-parameter state the rule keeps (0 for SGD, 1 for momentum,
  // 2 for Adam). Slots start at zero.
  virtual int NumSlots() const = 0;

  // Updates params[0..n) in place from grad[0..n); slots[k][0..n) is state array k for the
  // same n parameters.
  virtual void Update(const UpdateContext& ctx, const float* grad, float* params,
                      float* const* slots, int64_t n) = 0;
};

}  // namespace mrtrain::api
