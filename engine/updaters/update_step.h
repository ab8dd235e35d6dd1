#pragma once

#include <cstdint>
#include <vector>

#include "engine/api/reducer.h"

namespace mrtrain::updaters {

// The engine's part of one update, the same around every rule (built-in or plugin). A reducer
// shard calls it once per block per round, after summing the block's gradients in partition
// order:
//
//   g = grad_sum / example_count          (+ l2 * w   for weights)
//   rule.Update(ctx, g, params, slots, n)
//   w = sign(w) * max(|w| - lr * l1, 0)   for weights, when l1 > 0
//
// L1 is a proximal step (soft threshold) after the rule instead of a subgradient l1 * sign(w)
// added to g: the subgradient flips sign every time a weight crosses zero, so weights oscillate
// around zero and never reach it, while the threshold sets every weight whose magnitude falls
// below lr * l1 to exactly 0.0 (never -0.0), which gives the sparse models users ask L1 for. For
// adaptive rules (AdaGrad, Adam) the threshold uses the global learning rate, not each
// element's effective step: an approximation that keeps this step independent of the rule.
// Biases are neither L1- nor L2-regularised (api::TensorSpec).
//
// example_count == 0 (no example touched the block this round, e.g. a sparse block or a shard
// whose partitions were all empty) is no update at all: params and slots are left untouched.
// There is no gradient to average (0/0 would write NaN into the model), and stepping anyway
// would decay momentum, move Adam along stale moments and shrink weights by L1/L2 without any
// data asking for it. Stateful rules therefore update lazily, as sparse optimisers do.
//
// Row-sparse tensors (issue 11) are to keep the same contract one row at a time: a shard calls
// this only for the rows a round touched, each a contiguous n = dim, so a row no example
// touched is not updated and its slots are not decayed. For SGD and AdaGrad without l1 and l2
// that is the dense result anyway (a zero gradient moves neither w nor G); L1 and L2 shrink
// touched rows only. For Adam it is the "lazy Adam" of sparse optimisers: an untouched row's m
// and v keep their values instead of decaying, and its next step still uses the global step t
// in the bias corrections. FTRL is lazy per element even within a touched block (ftrl.h).
//
// l1 <= 0 and l2 <= 0 mean off. `scratch` is grown to n floats and reused across calls so the
// hot path allocates nothing. Exceptions from rule.Update (a plugin's) propagate unchanged: the
// caller runs plugin code inside the plugin guard.
// REQUIRES: ctx.spec != nullptr, scratch != nullptr, n >= 0, example_count >= 0; params,
// grad_sum and each of the rule.NumSlots() slots hold n floats and do not overlap.
void ApplyUpdate(api::Reducer& rule, const api::UpdateContext& ctx, const float* grad_sum,
                 double example_count, float l1, float l2, float* params, float* const* slots,
                 int64_t n, std::vector<float>* scratch);

}  // namespace mrtrain::updaters
