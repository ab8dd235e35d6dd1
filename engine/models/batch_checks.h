#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/api/views.h"

// Checks the built-in models run on what the engine hands them, before any kernel indexes a
// weight with it. Bad data is the user's to fix, not a bug, so these throw
// std::invalid_argument (which the engine turns into a failed task with the message) rather
// than CHECK. Each message starts with the model's name.
namespace mrtrain::models {

// Throws unless the data has at least one feature.
void CheckShape(const char* model, const api::DataShape& shape);

// Throws std::logic_error when num_features is 0 (DescribeModel has not run), and
// std::invalid_argument unless dense rows are num_features wide, sparse rows have ordered
// offsets and columns below num_features, and labels are present when `needs_labels`.
// Checking the last column of each sparse row suffices, as columns increase within a row.
void CheckRows(const char* model, const api::Rows& rows, int64_t num_features, bool needs_labels);

// Throws unless `params` holds num_tensors non-null tensors, as DescribeModel described.
void CheckParams(const char* model, const api::ParamsView& params, size_t num_tensors);

// Throws naming the first row whose label is not an integer in [0, num_classes).
void CheckClassLabels(const char* model, const float* labels, int64_t num_rows,
                      int64_t num_classes);

// Throws naming the first row whose label is not 0, 1 or -1 (the libsvm spelling of 0).
void CheckBinaryLabels(const char* model, const float* labels, int64_t num_rows);

}  // namespace mrtrain::models
