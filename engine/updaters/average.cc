#include "engine/updaters/average.h"

namespace mrtrain::updaters {

void AverageReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                            float* const* /*slots*/, int64_t n) {
  // grad is the negated mean delta, so lr = 1 moves to the average and lr < 1 part way.
  const float lr = static_cast<float>(ctx.learning_rate);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) params[i] -= lr * grad[i];
}

}  // namespace mrtrain::updaters
