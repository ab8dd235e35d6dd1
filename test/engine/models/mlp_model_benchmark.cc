// Times MlpModel::Gradient on Fashion-MNIST-shaped data (784-128-10) against its floor: the
// five raw sgemm calls a forward and backward pass needs, on the same buffers, in the same
// run. Prints one line per batch size with the ratio; 1.0 would be no overhead at all.
//
//   bazel run --config=opt //test/engine/models:mlp_model_benchmark
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/api/random.h"
#include "engine/models/mlp_model.h"
#include "engine/tensor/blas.h"

namespace mrtrain::models {
namespace {

constexpr int64_t kInputs = 784;
constexpr int64_t kHidden = 128;
constexpr int64_t kClasses = 10;

// Takes gradients and drops them: what the engine's combiner does with them is not the
// model's cost.
class DroppingSink : public api::GradientSink {
 public:
  void AddTensor(int, const float*, size_t) override {}
  void AddBlock(int, int64_t, const float*, size_t) override {}
  void AddRow(int, int64_t, const float*, size_t) override {}
  int64_t block_size() const override { return 4096; }
};

// Seconds per call of fn, best of five rounds of `calls` calls.
template <typename Fn>
double SecondsPerCall(int calls, Fn&& fn) {
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count() / calls);
  }
  return best;
}

std::vector<float> Uniform(api::RandomStream& random, int64_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& x : v) x = random.Uniform(lo, hi);
  return v;
}

void Run(int64_t batch) {
  api::RandomStream random(1);
  const std::vector<float> x = Uniform(random, batch * kInputs, 0.0f, 1.0f);
  std::vector<float> labels(batch);
  for (float& y : labels) y = static_cast<float>(random.Below(kClasses));

  MlpModel model({kHidden}, kClasses);
  const std::vector<api::TensorSpec> specs =
      model.DescribeModel(api::DataShape{kInputs, kClasses, false});
  std::vector<std::vector<float>> values;
  for (const api::TensorSpec& spec : specs) {
    values.push_back(Uniform(random, spec.size(), -0.05f, 0.05f));
  }
  api::ParamsView params;
  params.specs = &specs;
  for (const auto& v : values) params.tensors.push_back(v.data());
  api::Rows rows;
  rows.num_rows = batch;
  rows.num_cols = kInputs;
  rows.dense = x.data();
  rows.labels = labels.data();
  DroppingSink sink;

  const int calls = static_cast<int>(200000 / batch);
  const double model_time = SecondsPerCall(calls, [&] {
    api::MapStats stats;
    model.Gradient(api::MapContext{}, rows, params, sink, stats);
  });

  std::vector<float> h(batch * kHidden), z(batch * kClasses), dh(batch * kHidden);
  std::vector<float> dw1(kInputs * kHidden), dw2(kHidden * kClasses);
  const double floor_time = SecondsPerCall(calls, [&] {
    blas::Gemm(false, false, batch, kHidden, kInputs, 1, x.data(), kInputs, values[0].data(),
               kHidden, 0, h.data(), kHidden);
    blas::Gemm(false, false, batch, kClasses, kHidden, 1, h.data(), kHidden, values[2].data(),
               kClasses, 0, z.data(), kClasses);
    blas::Gemm(true, false, kHidden, kClasses, batch, 1, h.data(), kHidden, z.data(), kClasses, 0,
               dw2.data(), kClasses);
    blas::Gemm(false, true, batch, kHidden, kClasses, 1, z.data(), kClasses, values[2].data(),
               kClasses, 0, dh.data(), kHidden);
    blas::Gemm(true, false, kInputs, kHidden, batch, 1, x.data(), kInputs, dh.data(), kHidden, 0,
               dw1.data(), kHidden);
  });
  std::printf("batch %4lld: model %8.1f us, sgemm floor %8.1f us, ratio %.3f\n",
              static_cast<long long>(batch), model_time * 1e6, floor_time * 1e6,
              model_time / floor_time);
}

}  // namespace
}  // namespace mrtrain::models

int main() {
  mrtrain::blas::SetBlasThreads(1);  // as the engine runs it
  for (int64_t batch : {32, 64, 128, 256}) mrtrain::models::Run(batch);
  return 0;
}
