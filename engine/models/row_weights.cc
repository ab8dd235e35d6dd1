#include "engine/models/row_weights.h"

#include <algorithm>

namespace mrtrain::models {

bool UsesRowSparseWeights(const api::DataShape& shape, int64_t floats_per_feature) {
  // No overflow: features <= 2^48 and an fm has at most 2^14 floats per feature.
  return shape.is_sparse && shape.num_features * floats_per_feature >= kRowSparseMinParams;
}

void NeedFeatureRows(const api::Rows& rows, std::initializer_list<int> tensors,
                     std::vector<uint32_t>* scratch, api::RowRequest& request) {
  const int64_t begin = rows.row_offsets[0];
  const int64_t end = rows.row_offsets[rows.num_rows];
  scratch->assign(rows.cols + begin, rows.cols + end);
  std::sort(scratch->begin(), scratch->end());
  scratch->erase(std::unique(scratch->begin(), scratch->end()), scratch->end());
  for (int tensor : tensors) {
    for (uint32_t c : *scratch) request.Need(tensor, c);
  }
}

void RowSparseAffine::Resize(int64_t num_features) {
  num_features_ = num_features;
  w_grad_.Resize(num_features, 1, /*row_sparse=*/true);
}

void RowSparseAffine::NeededRows(const api::Rows& rows, api::RowRequest& request) {
  NeedFeatureRows(rows, {0}, &scratch_, request);
}

void RowSparseAffine::Forward(const api::Rows& rows, const api::ParamsView& params,
                              float* z) const {
  const float b = params.tensors[1][0];
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    float sum = 0;
    for (int64_t p = rows.row_offsets[i]; p < rows.row_offsets[i + 1]; ++p) {
      sum += rows.values[p] * params.Row(0, rows.cols[p])[0];
    }
    z[i] = sum + b;
  }
}

void RowSparseAffine::Backward(const api::Rows& rows, const float* dz, api::GradientSink& sink) {
  float db = 0;
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    db += dz[i];
    for (int64_t p = rows.row_offsets[i]; p < rows.row_offsets[i + 1]; ++p) {
      w_grad_.Row(rows.cols[p])[0] += dz[i] * rows.values[p];
    }
  }
  w_grad_.Emit(0, sink);
  sink.AddTensor(1, &db, 1);
}

}  // namespace mrtrain::models
