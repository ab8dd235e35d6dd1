#include "engine/updaters/update_step.h"

#include <algorithm>
#include <cmath>

#include "engine/api/views.h"
#include "engine/base/check.h"

namespace mrtrain::updaters {
namespace {

// grad[i] = grad_sum[i] / count + l2 * params[i]. Two loops rather than a per-element test of
// l2, so each vectorises without a branch.
void MeanGradient(const float* grad_sum, float count, float l2, const float* params, float* grad,
                  int64_t n) {
  if (l2 > 0.0f) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) grad[i] = grad_sum[i] / count + l2 * params[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) grad[i] = grad_sum[i] / count;
  }
}

// w = sign(w) * max(|w| - threshold, 0). The select gives +0.0 where copysign would give -0.0
// for a negative weight, so thresholded weights are the same bytes whatever their old sign.
void SoftThreshold(float threshold, float* params, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float shrunk = std::max(std::fabs(params[i]) - threshold, 0.0f);
    params[i] = shrunk > 0.0f ? std::copysign(shrunk, params[i]) : 0.0f;
  }
}

}  // namespace

void ApplyUpdate(api::Reducer& rule, const api::UpdateContext& ctx, const float* grad_sum,
                 double example_count, float l1, float l2, float* params, float* const* slots,
                 int64_t n, std::vector<float>* scratch) {
  MRTRAIN_CHECK(ctx.spec != nullptr && scratch != nullptr && n >= 0);
  MRTRAIN_CHECK(example_count >= 0);  // false for NaN too
  if (example_count == 0 || n == 0) return;

  const bool is_weight = ctx.spec->role == api::TensorSpec::Role::kWeight;
  if (scratch->size() < static_cast<size_t>(n)) scratch->resize(static_cast<size_t>(n));
  float* grad = scratch->data();
  MeanGradient(grad_sum, static_cast<float>(example_count), is_weight ? l2 : 0.0f, params, grad, n);
  rule.Update(ctx, grad, params, slots, n);

  if (!is_weight || l1 <= 0.0f) return;
  const float threshold = static_cast<float>(ctx.learning_rate * l1);
  if (threshold > 0.0f) SoftThreshold(threshold, params, n);
}

}  // namespace mrtrain::updaters
