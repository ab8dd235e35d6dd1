#include "engine/updaters/adam.h"

#include <cmath>

#include "engine/base/check.h"

namespace mrtrain::updaters {

AdamReducer::AdamReducer(const AdamOptions& options)
    : beta1_(options.beta1), beta2_(options.beta2), epsilon_(static_cast<float>(options.epsilon)) {}

void AdamReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                         float* const* slots, int64_t n) {
  MRTRAIN_CHECK(ctx.step >= 1);
  const double t = static_cast<double>(ctx.step);
  const double correction1 = 1.0 - std::pow(beta1_, t);
  const double correction2 = 1.0 - std::pow(beta2_, t);
  // lr * mhat / (sqrt(vhat) + eps) == (lr / c1) * m / (sqrt(v * (1 / c2)) + eps): folding the
  // corrections into two scalars leaves one multiply, one sqrt and one divide per element.
  const float step_size = static_cast<float>(ctx.learning_rate / correction1);
  const float inv_correction2 = static_cast<float>(1.0 / correction2);
  const float b1 = static_cast<float>(beta1_);
  const float b2 = static_cast<float>(beta2_);
  // 1 - b in double: float(0.999) is off by 1e-8, which is 1e-5 of the small 1 - 0.999.
  const float one_minus_b1 = static_cast<float>(1.0 - beta1_);
  const float one_minus_b2 = static_cast<float>(1.0 - beta2_);
  float* first = slots[0];
  float* second = slots[1];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float m = b1 * first[i] + one_minus_b1 * g;
    const float v = b2 * second[i] + one_minus_b2 * (g * g);
    first[i] = m;
    second[i] = v;
    params[i] -= step_size * m / (std::sqrt(v * inv_correction2) + epsilon_);
  }
}

}  // namespace mrtrain::updaters
