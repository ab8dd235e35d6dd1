#pragma once

#include <vector>

#include "engine/api/random.h"
#include "engine/api/views.h"

namespace mrtrain::api {

// Where a map call runs. Owned by the engine; valid only during the call.
struct MapContext {
  int64_t epoch = 0;               // 0-based
  int64_t round = 0;               // 0-based, within the epoch
  int64_t partition = 0;           // the partition these rows come from
  RandomStream* random = nullptr;  // seeded by (seed, epoch, round, partition): same on retry
  TaskLog* log = nullptr;
};

// A model: its tensors, the gradient of its loss, and its predictions. One instance serves one
// task at a time (the engine makes one per thread), so implementations may keep scratch
// buffers as members. Methods may throw (a std::exception, or anything else); the engine turns
// that into a failed task naming the mapper, its library and the message, never a crashed worker.
class Mapper {
 public:
  virtual ~Mapper() = default;

  // The tensors of the model for data of this shape. Called before any other method; throws
  // std::invalid_argument when the data cannot be used (for example sparse input to a dense
  // model), with a message for the user.
  virtual std::vector<TensorSpec> DescribeModel(const DataShape& shape) = 0;

  // For models with row-sparse tensors: names in `request` every row that Gradient or Evaluate
  // will read (ParamsView::Row) for `rows`. The engine pulls exactly those rows before the
  // call. The default names none (a model of dense tensors only).
  virtual void NeededRows(const Rows& /*rows*/, RowRequest& /*request*/) {}

  // Adds to `sink` the gradient of the loss summed over `rows` at `params`, and adds the loss,
  // the number of examples and the number classified correctly to `stats`.
  virtual void Gradient(const MapContext& ctx, const Rows& rows, const ParamsView& params,
                        GradientSink& sink, MapStats& stats) = 0;

  // Adds the loss, examples and correct count of `rows` at `params` to `stats`, without
  // gradients (used for validation and test sets).
  virtual void Evaluate(const Rows& rows, const ParamsView& params, MapStats& stats) = 0;

  // How many scores Predict writes per row (class probabilities, or 1).
  virtual int NumOutputs() const = 0;

  // Writes one prediction per row into predicted[num_rows] (a class index or a value) and
  // NumOutputs() scores per row into scores[num_rows * NumOutputs()].
  virtual void Predict(const Rows& rows, const ParamsView& params, float* predicted,
                       float* scores) = 0;
};

}  // namespace mrtrain::api
