#include "engine/updaters/ftrl.h"

#include <cmath>

#include "engine/api/views.h"
#include "engine/base/check.h"

namespace mrtrain::updaters {

FtrlReducer::FtrlReducer(const FtrlOptions& options)
    : beta_(static_cast<float>(options.beta)),
      l1_(static_cast<float>(options.l1)),
      l2_(static_cast<float>(options.l2)) {}

void FtrlReducer::Update(const api::UpdateContext& ctx, const float* grad, float* params,
                         float* const* slots, int64_t n) {
  MRTRAIN_CHECK(ctx.spec != nullptr && ctx.learning_rate > 0);
  const bool is_weight = ctx.spec->role == api::TensorSpec::Role::kWeight;
  const float l1 = is_weight ? l1_ : 0.0f;
  const float l2 = is_weight ? l2_ : 0.0f;
  const float inv_alpha = static_cast<float>(1.0 / ctx.learning_rate);
  float* z_slot = slots[0];
  float* n_slot = slots[1];
  // Branch-free (selects, not `continue`) so the loop vectorises like the other rules'.
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float w = params[i];
    const float n_old = n_slot[i];
    // Warm start (see the header): the z whose closed form is w, for a coordinate never updated.
    const float z_old = n_old != 0.0f ? z_slot[i]
                        : w == 0.0f   ? 0.0f
                                      : -(w * (beta_ * inv_alpha + l2) + std::copysign(l1, w));
    const float n_new = n_old + g * g;
    const float sqrt_n = std::sqrt(n_new);
    const float sigma = (sqrt_n - std::sqrt(n_old)) * inv_alpha;
    const float z = z_old + (g - sigma * w);
    // +0.0 inside the threshold, never -0.0, so a zeroed weight has the same bytes either way.
    const float w_new = std::fabs(z) <= l1
                            ? 0.0f
                            : -(z - std::copysign(l1, z)) / ((beta_ + sqrt_n) * inv_alpha + l2);
    // Lazy: a coordinate whose gradient is exactly 0 keeps w, z and n.
    const bool touched = g != 0.0f;
    z_slot[i] = touched ? z : z_slot[i];
    n_slot[i] = touched ? n_new : n_old;
    params[i] = touched ? w_new : w;
  }
}

}  // namespace mrtrain::updaters
