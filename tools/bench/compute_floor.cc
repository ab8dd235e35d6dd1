#include "tools/bench/compute_floor.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/tensor/blas.h"

namespace mrtrain::bench {

double RunFloorEpoch(const FloorSetup& s) {
  const int layers = static_cast<int>(s.widths.size()) - 1;
  std::vector<std::vector<float>> w(layers), b(layers), gw(layers), gb(layers), act(layers),
      delta(layers);
  for (int l = 0; l < layers; ++l) {
    w[l].assign(s.widths[l] * s.widths[l + 1], 0.01f);
    for (size_t i = 0; i < w[l].size(); ++i) w[l][i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    b[l].assign(s.widths[l + 1], 0.0f);
    gw[l].resize(w[l].size());
    gb[l].resize(b[l].size());
  }
  const int64_t max_batch = (s.rows + s.rounds - 1) / s.rounds + 1;
  for (int l = 0; l < layers; ++l) {
    act[l].resize(max_batch * s.widths[l + 1]);
    delta[l].resize(max_batch * s.widths[l + 1]);
  }
  const int64_t k = s.widths.back();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < s.rounds; ++r) {
    const int64_t begin = s.rows * r / s.rounds, end = s.rows * (r + 1) / s.rounds;
    const int64_t m = end - begin;
    const float* x = s.x + begin * s.widths[0];
    // Forward.
    const float* in = x;
    for (int l = 0; l < layers; ++l) {
      const int64_t n = s.widths[l + 1];
      float* z = act[l].data();
      for (int64_t i = 0; i < m; ++i) std::copy(b[l].begin(), b[l].end(), z + i * n);
      blas::Gemm(false, false, m, n, s.widths[l], 1.0f, in, s.widths[l], w[l].data(), n, 1.0f, z,
                 n);
      if (l + 1 < layers) {
        for (int64_t i = 0; i < m * n; ++i) z[i] = std::max(z[i], 0.0f);
      }
      in = z;
    }
    // Softmax cross-entropy gradient wrt the logits.
    float* logits = act[layers - 1].data();
    float* d = delta[layers - 1].data();
    for (int64_t i = 0; i < m; ++i) {
      const float* row = logits + i * k;
      const float mx = *std::max_element(row, row + k);
      float sum = 0;
      for (int64_t c = 0; c < k; ++c) sum += d[i * k + c] = std::exp(row[c] - mx);
      for (int64_t c = 0; c < k; ++c) d[i * k + c] /= sum;
      d[i * k + static_cast<int64_t>(s.labels[begin + i])] -= 1.0f;
    }
    // Backward.
    for (int l = layers - 1; l >= 0; --l) {
      const int64_t n = s.widths[l + 1];
      const float* layer_in = l == 0 ? x : act[l - 1].data();
      blas::Gemm(true, false, s.widths[l], n, m, 1.0f, layer_in, s.widths[l], delta[l].data(), n,
                 0.0f, gw[l].data(), n);
      std::fill(gb[l].begin(), gb[l].end(), 0.0f);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t c = 0; c < n; ++c) gb[l][c] += delta[l][i * n + c];
      }
      if (l > 0) {
        float* prev = delta[l - 1].data();
        blas::Gemm(false, true, m, s.widths[l], n, 1.0f, delta[l].data(), n, w[l].data(), n, 0.0f,
                   prev, s.widths[l]);
        const float* a = act[l - 1].data();
        for (int64_t i = 0; i < m * s.widths[l]; ++i) prev[i] = a[i] > 0 ? prev[i] : 0.0f;
      }
    }
    for (int l = 0; l < layers; ++l) {
      blas::Axpy(static_cast<int64_t>(w[l].size()), -s.learning_rate / m, gw[l].data(),
                 w[l].data());
      blas::Axpy(static_cast<int64_t>(b[l].size()), -s.learning_rate / m, gb[l].data(),
                 b[l].data());
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace mrtrain::bench
