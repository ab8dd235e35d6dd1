#pragma once

#include <cstdint>

#include "engine/api/views.h"

// The softmax output layer that the softmax and MLP models share: cross-entropy loss, its
// gradient with respect to the logits, and class probabilities. Stable for any logits: each
// row's largest logit is subtracted before exponentiating.
namespace mrtrain::models {

// The class count a classifier configured with `classes` (0: from the data) uses for data of
// `shape`. Throws std::invalid_argument naming `model` when neither gives at least 2 classes,
// or the data has more classes than configured.
int64_t ResolveClasses(const char* model, int64_t classes, const api::DataShape& shape);

// For logits z[n x k] (row-major) and class labels[n], adds to `stats` the summed
// cross-entropy loss, n examples, and the rows whose largest logit (the first, on ties) is
// at the label. Then, if `gradient`, overwrites z with dLoss/dz = softmax(z) - onehot(label);
// otherwise z is left holding scratch values.
// REQUIRES: labels passed CheckClassLabels for k classes.
void SoftmaxCrossEntropy(int64_t n, int64_t k, const float* labels, bool gradient, float* z,
                         api::MapStats& stats);

// Overwrites logits z[n x k] with class probabilities and writes each row's most probable
// class (the first, on ties) into predicted[n].
void SoftmaxInPlace(int64_t n, int64_t k, float* z, float* predicted);

}  // namespace mrtrain::models
