#include "engine/updaters/momentum.h"

namespace mrtrain::updaters {

MomentumReducer::MomentumReducer(const MomentumOptions& options)
    : mu_(static_cast<float>(options.momentum)) {}

void MomentumReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                             float* const* slots, int64_t n) {
  const float lr = static_cast<float>(ctx.learning_rate);
  float* velocity = slots[0];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = mu_ * velocity[i] + grad[i];
    velocity[i] = v;
    params[i] -= lr * v;
  }
}

NesterovReducer::NesterovReducer(const MomentumOptions& options)
    : mu_(static_cast<float>(options.momentum)) {}

void NesterovReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                             float* const* slots, int64_t n) {
  const float lr = static_cast<float>(ctx.learning_rate);
  float* velocity = slots[0];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = mu_ * velocity[i] + grad[i];
    velocity[i] = v;
    params[i] -= lr * (grad[i] + mu_ * v);
  }
}

}  // namespace mrtrain::updaters
