#include "engine/updaters/sgd.h"

namespace mrtrain::updaters {

void SgdReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                        float* const* /*slots*/, int64_t n) {
  const float lr = static_cast<float>(ctx.learning_rate);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) params[i] -= lr * grad[i];
}

}  // namespace mrtrain::updaters
