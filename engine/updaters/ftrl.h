#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

struct FtrlOptions {
  double beta = 1.0;  // > 0: the per-coordinate rate is alpha / (beta + sqrt(n))
  double l1 = 0.0;    // >= 0: |z| <= l1 gives a weight of exactly 0
  double l2 = 0.0;    // >= 0: ridge term of the closed form
};

// FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches",
// Algorithm 1), with alpha = ctx.learning_rate. Slot 0 is z, slot 1 is n; per coordinate with
// gradient g:
//
//   sigma = (sqrt(n + g^2) - sqrt(n)) / alpha
//   z    += g - sigma * w
//   n    += g^2
//   w     = 0                                              if |z| <= l1
//         = -(z - sign(z) * l1) / ((beta + sqrt(n)) / alpha + l2)   otherwise
//
// The rule applies L1 and L2 itself (they are part of the closed form), so the engine's own
// L2-in-gradient and soft threshold stay off for it (the spec moves update.l1 and update.l2
// into the rule's parameters); biases get neither (ctx.spec->role), as with every rule.
//
// Lazy, per coordinate: a coordinate whose gradient is exactly 0 keeps its weight, z and n, as
// in the paper, where a feature absent from an example is not updated. So a coordinate that no
// example touched is left alone even inside a block that other coordinates did touch; the
// engine-wide lazy rule for untouched blocks and rows is in update_step.h.
//
// Warm start: slots start at zero, while textbook FTRL's weights start at zero too. So that a
// model initialised otherwise (model.init; an fm's factors must not start at 0) keeps its
// initial weights, a coordinate with n == 0 first gets the z whose closed form is its current
// weight: z = -(w * (beta / alpha + l2) + sign(w) * l1). With model.init: zeros this is z = 0,
// the paper's algorithm exactly.
//
// The step works element by element on contiguous arrays, so a row-sparse tensor can call it
// once per touched row. Thread-compatible; holds only constants.
// REQUIRES: ctx.spec != nullptr, ctx.learning_rate > 0.
class FtrlReducer final : public api::Reducer {
 public:
  explicit FtrlReducer(const FtrlOptions& options);

  int NumSlots() const override { return 2; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;

 private:
  const float beta_;
  const float l1_;
  const float l2_;
};

}  // namespace mrtrain::updaters
