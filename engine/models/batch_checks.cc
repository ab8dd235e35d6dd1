#include "engine/models/batch_checks.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mrtrain::models {
namespace {

// "2.5" rather than std::to_string's "2.500000", so the user sees the label as written.
std::string FormatLabel(float label) {
  std::ostringstream out;
  out << label;
  return out.str();
}

[[noreturn]] void Fail(const char* model, const std::string& message) {
  throw std::invalid_argument(std::string(model) + ": " + message);
}

}  // namespace

void CheckShape(const char* model, const api::DataShape& shape) {
  if (shape.num_features < 1) {
    Fail(model,
         "the data has no features (num_features = " + std::to_string(shape.num_features) + ")");
  }
}

void CheckRows(const char* model, const api::Rows& rows, int64_t num_features, bool needs_labels) {
  if (num_features < 1) {
    throw std::logic_error(std::string(model) + ": DescribeModel must run before other calls");
  }
  if (rows.num_rows < 0) Fail(model, "negative row count " + std::to_string(rows.num_rows));
  if (rows.num_rows == 0) return;
  if (needs_labels && rows.labels == nullptr) Fail(model, "rows carry no labels");
  if (!rows.is_sparse) {
    if (rows.num_cols != num_features) {
      Fail(model, "rows have " + std::to_string(rows.num_cols) + " features, the model " +
                      std::to_string(num_features));
    }
    if (rows.dense == nullptr) Fail(model, "dense rows without values");
    return;
  }
  if (rows.row_offsets == nullptr) Fail(model, "sparse rows without offsets");
  for (int64_t i = 0; i < rows.num_rows; ++i) {
    const int64_t begin = rows.row_offsets[i];
    const int64_t end = rows.row_offsets[i + 1];
    if (begin < 0 || end < begin) Fail(model, "row " + std::to_string(i) + " has bad offsets");
    if (end == begin) continue;
    if (rows.cols == nullptr || rows.values == nullptr) Fail(model, "sparse rows without values");
    if (rows.cols[end - 1] >= num_features) {
      Fail(model, "row " + std::to_string(i) + " has feature index " +
                      std::to_string(rows.cols[end - 1]) + ", the model has " +
                      std::to_string(num_features) + " features");
    }
  }
}

void CheckParams(const char* model, const api::ParamsView& params, size_t num_tensors) {
  if (params.tensors.size() != num_tensors) {
    Fail(model, "expected " + std::to_string(num_tensors) + " parameter tensors, got " +
                    std::to_string(params.tensors.size()));
  }
  for (size_t t = 0; t < params.tensors.size(); ++t) {
    const bool row_sparse =
        params.specs != nullptr && t < params.specs->size() && (*params.specs)[t].row_sparse;
    if (params.tensors[t] == nullptr && !row_sparse) Fail(model, "a parameter tensor is missing");
  }
}

void CheckClassLabels(const char* model, const float* labels, int64_t num_rows,
                      int64_t num_classes) {
  for (int64_t i = 0; i < num_rows; ++i) {
    const float label = labels[i];
    // Written so that NaN fails too.
    if (!(label >= 0 && label < static_cast<float>(num_classes)) || std::floor(label) != label) {
      Fail(model, "row " + std::to_string(i) + " has label " + FormatLabel(label) +
                      "; labels must be integers in [0, " + std::to_string(num_classes) + ")");
    }
  }
}

void CheckBinaryLabels(const char* model, const float* labels, int64_t num_rows) {
  for (int64_t i = 0; i < num_rows; ++i) {
    const float label = labels[i];
    if (label != 0 && label != 1 && label != -1) {
      Fail(model, "row " + std::to_string(i) + " has label " + FormatLabel(label) +
                      "; labels must be 0 or 1 (-1 is read as 0)");
    }
  }
}

}  // namespace mrtrain::models
