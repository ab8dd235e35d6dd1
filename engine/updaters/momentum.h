#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

struct MomentumOptions {
  double momentum = 0.9;  // mu, in [0, 1): the fraction of the velocity kept each step
};

// Heavy-ball momentum (PyTorch's SGD with momentum and dampening 0):
//   v = mu*v + g;  w -= lr*v
// Slot 0 is the velocity v. Thread-compatible; holds only constants, so one instance may serve
// many blocks.
class MomentumReducer final : public api::Reducer {
 public:
  explicit MomentumReducer(const MomentumOptions& options);

  int NumSlots() const override { return 1; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;

 private:
  const float mu_;
};

// Nesterov momentum in the form PyTorch uses (nesterov=True): the step looks ahead along the
// new velocity, which damps the overshoot of heavy-ball momentum.
//   v = mu*v + g;  w -= lr*(g + mu*v)
// Slot 0 is the velocity v. Thread-compatible, like MomentumReducer.
class NesterovReducer final : public api::Reducer {
 public:
  explicit NesterovReducer(const MomentumOptions& options);

  int NumSlots() const override { return 1; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;

 private:
  const float mu_;
};

}  // namespace mrtrain::updaters
