#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/api/mapper.h"
#include "engine/api/views.h"
#include "test/engine/models/collecting_sink.h"

// Test support for the built-in models: random batches in both dense and sparse form, random
// parameters, and a double-precision reference loss whose central differences give the
// gradient each model must compute.
namespace mrtrain::models {

// One batch of rows held both ways, with the same values.
struct TestBatch {
  int64_t num_rows = 0;
  int64_t num_cols = 0;
  std::vector<float> dense;
  std::vector<int64_t> row_offsets;
  std::vector<uint32_t> cols;
  std::vector<float> values;
  std::vector<float> labels;

  api::Rows View(bool sparse) const;
  api::DataShape Shape(int64_t num_classes, bool sparse) const;
};

// Features uniform in [-1, 1), each nonzero with probability `density`; row 1 has no
// nonzeros (when there are two rows or more). Labels are class indices below num_classes,
// or uniform in [-2, 2) when num_classes is 0.
TestBatch RandomBatch(uint64_t seed, int64_t num_rows, int64_t num_cols, int64_t num_classes,
                      float density = 0.6f);

// A batch from explicit dense rows (num_rows x num_cols, row-major) and labels.
TestBatch MakeBatch(int64_t num_cols, std::vector<float> dense, std::vector<float> labels);

// Parameter values for `specs`: weights uniform in [-1, 1), biases in [-0.5, 0.5).
struct TestParams {
  std::vector<api::TensorSpec> specs;
  std::vector<std::vector<float>> values;

  api::ParamsView View() const;  // valid while this object lives unchanged
};
TestParams RandomParams(const std::vector<api::TensorSpec>& specs, uint64_t seed);

// What Gradient gave: the summed gradient per tensor, the stats and the sink's call counts.
struct GradientRun {
  std::vector<std::vector<float>> gradients;
  api::MapStats stats;
  int tensor_calls = 0;
  int block_calls = 0;
};
GradientRun RunGradient(api::Mapper& mapper, const TestBatch& batch, bool sparse,
                        const TestParams& params, int64_t block_size = 4096);
api::MapStats RunEvaluate(api::Mapper& mapper, const TestBatch& batch, bool sparse,
                          const TestParams& params);

// The loss on top of the layers.
enum class LossKind { kSquared, kLogistic, kSoftmax };

// The summed loss of a network computed in double from first principles: tensors come in
// (weight, bias) pairs, a layer's width is its bias's size, hidden layers use ReLU.
double ReferenceLoss(LossKind kind, const std::vector<std::vector<double>>& params,
                     const TestBatch& batch);

// Central differences of ReferenceLoss at `params`, one per parameter.
std::vector<std::vector<double>> ReferenceGradient(LossKind kind, const TestParams& params,
                                                   const TestBatch& batch);

// Central differences of any `loss` of the parameters (in double) at `params`.
std::vector<std::vector<double>> CentralDifferences(
    const TestParams& params,
    const std::function<double(const std::vector<std::vector<double>>&)>& loss);

// CHECKs |actual - expected| <= abs_tol + rel_tol * |expected| element by element.
void CheckClose(const std::vector<std::vector<float>>& actual,
                const std::vector<std::vector<double>>& expected, double abs_tol, double rel_tol);
void CheckClose(const std::vector<std::vector<float>>& actual,
                const std::vector<std::vector<float>>& expected, double abs_tol);

// Describes `mapper` for the batch, draws parameters and CHECKs Gradient's loss against
// ReferenceLoss and its gradient against ReferenceGradient, for dense and sparse rows, and
// that the two agree within 1e-5. Returns the parameters used.
TestParams CheckGradientAgainstReference(api::Mapper& mapper, LossKind kind, const TestBatch& batch,
                                         int64_t num_classes, uint64_t seed);

}  // namespace mrtrain::models
