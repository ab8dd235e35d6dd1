#include "engine/updaters/adagrad.h"

#include <cmath>

namespace mrtrain::updaters {

AdagradReducer::AdagradReducer(const AdagradOptions& options)
    : epsilon_(static_cast<float>(options.epsilon)),
      initial_accumulator_(static_cast<float>(options.initial_accumulator)) {}

void AdagradReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                            float* const* slots, int64_t n) {
  const float lr = static_cast<float>(ctx.learning_rate);
  // The slot holds the plain sum of squared gradients and the initial accumulator is added
  // when dividing, so a sparse block first touched late gets it too.
  float* accumulator = slots[0];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float acc = accumulator[i] + g * g;
    accumulator[i] = acc;
    params[i] -= lr * g / (std::sqrt(acc + initial_accumulator_) + epsilon_);
  }
}

}  // namespace mrtrain::updaters
