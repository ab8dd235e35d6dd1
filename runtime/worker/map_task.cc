#include "runtime/worker/map_task.h"

#include <algorithm>
#include <exception>
#include <string>

#include "engine/base/log.h"
#include "shuffle/buffer/map_output_buffer.h"

namespace mrtrain::runtime {
namespace {

constexpr uint64_t kMapperStream = 0x3A99E4;

// Sends what a mapper emits into the task's combining buffer. The sink interface returns
// nothing (plugins should not handle engine errors), so the first error is kept and checked
// after each mapper call.
class BufferSink : public api::GradientSink {
 public:
  BufferSink(const ModelLayout* layout, shuffle::MapOutputBuffer* buffer)
      : layout_(layout), buffer_(buffer) {}

  void AddTensor(int tensor_id, const float* gradient) override {
    if (!status_.ok()) return;
    if (tensor_id < 0 || tensor_id >= layout_->num_tensors()) {
      status_ = InvalidArgumentError("emitted unknown tensor id " + std::to_string(tensor_id));
      return;
    }
    const int64_t blocks = layout_->num_blocks(tensor_id);
    for (int64_t b = 0; b < blocks && status_.ok(); ++b) {
      status_ = buffer_->Add(ParamKey(tensor_id, b), gradient + b * layout_->block_size());
    }
  }

  void AddBlock(int tensor_id, int64_t block, const float* gradient) override {
    if (!status_.ok()) return;
    if (tensor_id < 0 || tensor_id >= layout_->num_tensors() || block < 0) {
      status_ = InvalidArgumentError("emitted unknown block (tensor " + std::to_string(tensor_id) +
                                     ", block " + std::to_string(block) + ")");
      return;
    }
    status_ = buffer_->Add(ParamKey(tensor_id, block), gradient);
  }

  int64_t block_size() const override { return layout_->block_size(); }
  const Status& status() const { return status_; }

 private:
  const ModelLayout* layout_;
  shuffle::MapOutputBuffer* buffer_;
  Status status_;
};

// Accumulates whole tensors, for the local SGD steps of model averaging.
class DenseSink : public api::GradientSink {
 public:
  explicit DenseSink(const ModelLayout* layout) : layout_(layout) {
    for (const auto& spec : layout->specs()) grads_.emplace_back(spec.size(), 0.0f);
  }

  void AddTensor(int tensor_id, const float* gradient) override {
    if (!CheckTensor(tensor_id)) return;
    auto& g = grads_[tensor_id];
    for (size_t i = 0; i < g.size(); ++i) g[i] += gradient[i];
  }

  void AddBlock(int tensor_id, int64_t block, const float* gradient) override {
    if (!CheckTensor(tensor_id)) return;
    if (block < 0 || block >= layout_->num_blocks(tensor_id)) {
      status_ = InvalidArgumentError("emitted unknown block " + std::to_string(block) +
                                     " of tensor " + std::to_string(tensor_id));
      return;
    }
    BlockRange r = layout_->Range(ParamKey(tensor_id, block));
    float* g = grads_[tensor_id].data() + r.offset;
    for (int64_t i = 0; i < r.length; ++i) g[i] += gradient[i];
  }

  int64_t block_size() const override { return layout_->block_size(); }
  const Status& status() const { return status_; }
  std::vector<std::vector<float>>& grads() { return grads_; }
  void Zero() {
    for (auto& g : grads_) std::fill(g.begin(), g.end(), 0.0f);
  }

 private:
  bool CheckTensor(int tensor_id) {
    if (!status_.ok()) return false;
    if (tensor_id < 0 || tensor_id >= layout_->num_tensors()) {
      status_ = InvalidArgumentError("emitted unknown tensor id " + std::to_string(tensor_id));
      return false;
    }
    return true;
  }

  const ModelLayout* layout_;
  std::vector<std::vector<float>> grads_;
  Status status_;
};

class SpdlogTaskLog : public api::TaskLog {
 public:
  explicit SpdlogTaskLog(const TaskId& task) : task_(task.ToString()) {}
  void Info(const std::string& m) override { Logger("plugin")->info("{}: {}", task_, m); }
  void Warn(const std::string& m) override { Logger("plugin")->warn("{}: {}", task_, m); }

 private:
  std::string task_;
};

Status TaskError(const TaskId& task, const std::string& what) {
  return PluginError(task.ToString() + ": mapper failed: " + what);
}

// Calls mapper.Gradient, turning exceptions and sink errors into a Status.
template <typename Sink>
Status CallGradient(const TaskId& task, api::Mapper& mapper, const api::MapContext& ctx,
                    const api::Rows& rows, const api::ParamsView& params, Sink& sink,
                    api::MapStats& stats) {
  try {
    mapper.Gradient(ctx, rows, params, sink, stats);
  } catch (const std::exception& e) {
    return TaskError(task, e.what());
  } catch (...) {
    return TaskError(task, "unknown exception");
  }
  if (!sink.status().ok()) {
    if (sink.status().code() == StatusCode::kFailedPrecondition) {
      return sink.status().WithContext(task.ToString());
    }
    return TaskError(task, sink.status().message());
  }
  return Status::Ok();
}

// Local SGD over `rows` from `params`; emits -(local - params) * rows into the buffer sink, so
// that the reducers' division by the round's example count yields the weighted mean delta.
Status RunLocalSgd(const MapTaskConfig& config, const TaskId& task, const api::MapContext& ctx,
                   const api::Rows& rows, const api::ParamsView& params, api::Mapper& mapper,
                   BufferSink& out, api::MapStats& stats) {
  const ModelLayout& layout = *config.layout;
  std::vector<std::vector<float>> local(layout.num_tensors());
  api::ParamsView local_view;
  local_view.specs = &layout.specs();
  for (int t = 0; t < layout.num_tensors(); ++t) {
    local[t].assign(params.tensors[t], params.tensors[t] + layout.specs()[t].size());
    local_view.tensors.push_back(local[t].data());
  }
  DenseSink grads(&layout);
  const int64_t batch = std::max<int64_t>(1, config.local_batch_size);
  for (int64_t begin = 0; begin < rows.num_rows; begin += batch) {
    const int64_t end = std::min(rows.num_rows, begin + batch);
    grads.Zero();
    MRTRAIN_RETURN_IF_ERROR(
        CallGradient(task, mapper, ctx, SliceRows(rows, begin, end), local_view, grads, stats));
    const float step = static_cast<float>(config.local_learning_rate / (end - begin));
    for (int t = 0; t < layout.num_tensors(); ++t) {
      const auto& g = grads.grads()[t];
      for (size_t i = 0; i < g.size(); ++i) local[t][i] -= step * g[i];
    }
  }
  const float weight = static_cast<float>(rows.num_rows);
  for (int t = 0; t < layout.num_tensors(); ++t) {
    std::vector<float>& delta = local[t];
    for (size_t i = 0; i < delta.size(); ++i) {
      delta[i] = (params.tensors[t][i] - delta[i]) * weight;
    }
    out.AddTensor(t, delta.data());
  }
  if (!out.status().ok()) return out.status().WithContext(task.ToString());
  return Status::Ok();
}

}  // namespace

api::Rows SliceRows(const api::Rows& rows, int64_t begin, int64_t end) {
  api::Rows s = rows;
  s.num_rows = end - begin;
  if (rows.labels) s.labels = rows.labels + begin;
  if (rows.is_sparse) {
    s.row_offsets = rows.row_offsets + begin;
  } else if (rows.dense) {
    s.dense = rows.dense + begin * rows.num_cols;
  }
  return s;
}

namespace {

// Runs the job's combiner over every block of the task's runs, in place.
Status Combine(const TaskId& task, api::Combiner& combiner, int64_t examples, api::TaskLog* log,
               std::vector<shuffle::Run>* runs) {
  api::CombineContext ctx;
  ctx.epoch = task.epoch;
  ctx.round = task.round;
  ctx.partition = task.partition;
  ctx.examples = examples;
  ctx.log = log;
  try {
    for (shuffle::Run& run : *runs) {
      for (size_t i = 0; i < run.keys.size(); ++i) {
        ctx.tensor = static_cast<int>(run.keys[i].tensor());
        ctx.block = static_cast<int64_t>(run.keys[i].block());
        combiner.Combine(ctx, run.values.data() + run.offsets[i],
                         run.offsets[i + 1] - run.offsets[i]);
      }
    }
  } catch (const std::exception& e) {
    return PluginError(task.ToString() + ": combiner failed: " + e.what());
  } catch (...) {
    return PluginError(task.ToString() + ": combiner failed with an unknown exception");
  }
  return Status::Ok();
}

}  // namespace

Result<MapTaskOutput> RunMapTask(const MapTaskConfig& config, const TaskId& task,
                                 const data::PartitionData& partition,
                                 const api::ParamsView& params, api::Mapper& mapper,
                                 const shuffle::Partitioner& partitioner,
                                 RowOrderCache& row_orders, api::Combiner* combiner) {
  auto order = row_orders.Get(task.epoch, task.partition, partition.num_rows);
  auto [begin, end] = RoundRange(partition.num_rows, task.round, config.rounds_per_epoch);
  data::PartitionData slice;
  partition.Gather(order->data() + begin, end - begin, &slice);
  const api::Rows rows = slice.View(config.num_features);

  api::RandomStream random(config.seed, kMapperStream,
                           task.epoch * config.rounds_per_epoch + task.round, task.partition);
  SpdlogTaskLog log(task);
  api::MapContext ctx;
  ctx.epoch = task.epoch;
  ctx.round = task.round;
  ctx.partition = task.partition;
  ctx.random = &random;
  ctx.log = &log;

  shuffle::MapOutputBuffer buffer(config.layout, &partitioner, config.buffer_bytes);
  BufferSink sink(config.layout, &buffer);
  MapTaskOutput out;
  if (config.model_averaging) {
    if (rows.num_rows > 0) {
      MRTRAIN_RETURN_IF_ERROR(
          RunLocalSgd(config, task, ctx, rows, params, mapper, sink, out.stats));
    }
  } else {
    const int64_t chunk = std::max<int64_t>(1, config.chunk_rows);
    for (int64_t b = 0; b < rows.num_rows; b += chunk) {
      MRTRAIN_RETURN_IF_ERROR(CallGradient(task, mapper, ctx,
                                           SliceRows(rows, b, std::min(rows.num_rows, b + chunk)),
                                           params, sink, out.stats));
    }
  }
  out.runs = buffer.Finish();
  if (combiner) {
    MRTRAIN_RETURN_IF_ERROR(Combine(task, *combiner, out.stats.examples, &log, &out.runs));
  }
  return out;
}

Result<api::MapStats> EvaluatePartition(const data::PartitionData& partition, int64_t num_features,
                                        int64_t chunk_rows, const api::ParamsView& params,
                                        api::Mapper& mapper) {
  const api::Rows rows = partition.View(num_features);
  api::MapStats stats;
  const int64_t chunk = std::max<int64_t>(1, chunk_rows);
  try {
    for (int64_t b = 0; b < rows.num_rows; b += chunk) {
      mapper.Evaluate(SliceRows(rows, b, std::min(rows.num_rows, b + chunk)), params, stats);
    }
  } catch (const std::exception& e) {
    return PluginError(std::string("evaluation failed: ") + e.what());
  }
  return stats;
}

}  // namespace mrtrain::runtime
