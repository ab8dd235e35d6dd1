#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

// Plain gradient descent: w -= lr * g. Keeps no state, so one instance may serve any number of
// blocks and threads.
class SgdReducer final : public api::Reducer {
 public:
  int NumSlots() const override { return 0; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;
};

}  // namespace mrtrain::updaters
