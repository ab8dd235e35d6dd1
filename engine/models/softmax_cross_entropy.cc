#include "engine/models/softmax_cross_entropy.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace mrtrain::models {
namespace {

// Index of the first largest value of x[k].
int64_t ArgMax(const float* x, int64_t k) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j) {
    if (x[j] > x[best]) best = j;
  }
  return best;
}

// Replaces x[k] by exp(x - x[best]) and returns their sum, which is at least 1 (the term for
// `best` is exp(0)), so neither overflow nor a zero denominator can happen.
float ShiftedExp(float* x, int64_t k, int64_t best) {
  const float max = x[best];
  float sum = 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    x[j] = std::exp(x[j] - max);
    sum += x[j];
  }
  return sum;
}

}  // namespace

int64_t ResolveClasses(const char* model, int64_t classes, const api::DataShape& shape) {
  const std::string name(model);
  if (classes == 0) {
    if (shape.num_classes < 2) {
      throw std::invalid_argument(name + ": needs at least 2 classes, the data has " +
                                  std::to_string(shape.num_classes) +
                                  "; set model.classes or use class labels");
    }
    return shape.num_classes;
  }
  if (shape.num_classes > classes) {
    throw std::invalid_argument(name + ": model.classes is " + std::to_string(classes) +
                                " but the data has " + std::to_string(shape.num_classes) +
                                " classes");
  }
  return classes;
}

void SoftmaxCrossEntropy(int64_t n, int64_t k, const float* labels, bool gradient, float* z,
                         api::MapStats& stats) {
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    float* zi = z + i * k;
    const int64_t label = static_cast<int64_t>(labels[i]);
    const int64_t best = ArgMax(zi, k);
    correct += best == label;
    // -log softmax(z)[label] = log(sum_j exp(z_j - max)) - (z_label - max).
    const float label_margin = zi[label] - zi[best];
    const float sum = ShiftedExp(zi, k, best);
    loss += static_cast<double>(std::log(sum)) - static_cast<double>(label_margin);
    if (!gradient) continue;
    const float inv_sum = 1.0f / sum;
    for (int64_t j = 0; j < k; ++j) zi[j] *= inv_sum;
    zi[label] -= 1.0f;
  }
  stats.loss_sum += loss;
  stats.examples += n;
  stats.correct += correct;
}

void SoftmaxInPlace(int64_t n, int64_t k, float* z, float* predicted) {
  for (int64_t i = 0; i < n; ++i) {
    float* zi = z + i * k;
    const int64_t best = ArgMax(zi, k);
    predicted[i] = static_cast<float>(best);
    const float inv_sum = 1.0f / ShiftedExp(zi, k, best);
    for (int64_t j = 0; j < k; ++j) zi[j] *= inv_sum;
  }
}

}  // namespace mrtrain::models
