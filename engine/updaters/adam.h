#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

struct AdamOptions {
  double beta1 = 0.9;     // in [0, 1): decay of the first moment
  double beta2 = 0.999;   // in [0, 1): decay of the second moment
  double epsilon = 1e-8;  // > 0: keeps the division defined where v is zero
};

// Adam (Kingma and Ba 2015), with t = ctx.step:
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
//   w -= lr * mhat / (sqrt(vhat) + epsilon),  mhat = m/(1-b1^t), vhat = v/(1-b2^t)
// Slot 0 is m, slot 1 is v. The bias corrections are computed in double once per call (b^t
// loses precision in float for large t); the per-element work is in float.
// REQUIRES: ctx.step >= 1 (at t = 0 the corrections divide by zero).
//
// Thread-compatible; holds only constants, so one instance may serve many blocks.
class AdamReducer final : public api::Reducer {
 public:
  explicit AdamReducer(const AdamOptions& options);

  int NumSlots() const override { return 2; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;

 private:
  const double beta1_;
  const double beta2_;
  const float epsilon_;
};

}  // namespace mrtrain::updaters
