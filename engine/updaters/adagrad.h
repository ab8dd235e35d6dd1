#pragma once

#include <cstdint>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

struct AdagradOptions {
  double epsilon = 1e-10;            // > 0: keeps the division defined where G is zero
  double initial_accumulator = 0.1;  // >= 0: the value G starts from
};

// AdaGrad (Duchi et al. 2011): each parameter's step shrinks with the gradients it has seen.
//   G += g^2;  w -= lr * g / (sqrt(G + initial_accumulator) + epsilon)
// Slot 0 is the accumulator G, the plain sum of squared gradients.
//
// Adding initial_accumulator (TensorFlow's initial_accumulator_value) when dividing keeps the
// first steps from all being lr * sign(g). Adding it there rather than to the slot means a
// sparse block first updated late gets it too, and slots can start at zero.
//
// Thread-compatible; holds only constants, so one instance may serve many blocks.
class AdagradReducer final : public api::Reducer {
 public:
  explicit AdagradReducer(const AdagradOptions& options);

  int NumSlots() const override { return 1; }
  void Update(const api::UpdateContext& ctx, const float* grad, float* params, float* const* slots,
              int64_t n) override;

 private:
  const float epsilon_;
  const float initial_accumulator_;
};

}  // namespace mrtrain::updaters
