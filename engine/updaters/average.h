#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

// Model averaging: each map task trains its partition locally and emits the negated change of
// its parameters, so the engine's mean gradient is g = w - mean(w_local) and w -= lr * g with
// the job's learning rate (1 by default for this rule) lands exactly on the mean; lr < 1 moves
// part way towards it (a damped average). Keeps no state.
class AverageReducer final : public api::Reducer {
 public:
  int NumSlots() const override { return 0; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;
};

}  // namespace mrtrain::updaters
