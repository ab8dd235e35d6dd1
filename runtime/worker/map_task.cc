#include "runtime/worker/map_task.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include "engine/base/log.h"
#include "engine/data/dataset.h"
#include "engine/plugin/plugin_call.h"
#include "engine/plugin/plugin_library.h"
#include "shuffle/buffer/map_output_buffer.h"

namespace mrtrain::runtime {
namespace {

constexpr uint64_t kMapperStream = 0x3A99E4;

// Checks what a mapper emits against the model's layout before anything is read: a known
// tensor (and block), and a buffer of exactly the place's size. kInvalidArgument naming the
// tensor and both sizes; the caller adds the task and the mapper.
class EmitChecker {
 public:
  explicit EmitChecker(const ModelLayout* layout) : layout_(layout) {}

  Status CheckTensor(int tensor_id, size_t count) const {
    MRTRAIN_RETURN_IF_ERROR(CheckId(tensor_id));
    MRTRAIN_RETURN_IF_ERROR(CheckDense(tensor_id, "AddTensor"));
    return CheckCount(count, layout_->specs()[tensor_id].size(), TensorName(tensor_id));
  }

  Status CheckBlock(int tensor_id, int64_t block, size_t count) const {
    MRTRAIN_RETURN_IF_ERROR(CheckId(tensor_id));
    MRTRAIN_RETURN_IF_ERROR(CheckDense(tensor_id, "AddBlock"));
    const int64_t blocks = layout_->num_blocks(tensor_id);
    if (block < 0 || block >= blocks) {
      return InvalidArgumentError("emitted block " + std::to_string(block) + " of " +
                                  TensorName(tensor_id) + ", which has blocks 0 to " +
                                  std::to_string(blocks - 1));
    }
    return CheckCount(count, layout_->Range(ParamKey(tensor_id, block)).length,
                      "block " + std::to_string(block) + " of " + TensorName(tensor_id));
  }

  Status CheckRow(int tensor_id, int64_t row, size_t count) const {
    MRTRAIN_RETURN_IF_ERROR(CheckId(tensor_id));
    if (!layout_->is_row_sparse(tensor_id)) {
      return InvalidArgumentError("emitted a row of " + TensorName(tensor_id) +
                                  ", which is dense: use AddTensor or AddBlock");
    }
    const int64_t rows = layout_->num_blocks(tensor_id);
    if (row < 0 || row >= rows) {
      return InvalidArgumentError("emitted row " + std::to_string(row) + " of " +
                                  TensorName(tensor_id) + ", which has rows 0 to " +
                                  std::to_string(rows - 1));
    }
    // Checked here, named only on failure: a mapper emits tens of thousands of rows a call.
    const int64_t dim = layout_->specs()[tensor_id].row_dim();
    if (count == static_cast<uint64_t>(dim)) return Status::Ok();
    return CheckCount(count, dim, "row " + std::to_string(row) + " of " + TensorName(tensor_id));
  }

 private:
  Status CheckDense(int tensor_id, const char* call) const {
    if (!layout_->is_row_sparse(tensor_id)) return Status::Ok();
    return InvalidArgumentError(std::string(call) + " into " + TensorName(tensor_id) +
                                ", which is row-sparse: emit its rows with AddRow");
  }
  Status CheckId(int tensor_id) const {
    if (tensor_id >= 0 && tensor_id < layout_->num_tensors()) return Status::Ok();
    return InvalidArgumentError("emitted unknown tensor id " + std::to_string(tensor_id) +
                                "; the model has " + std::to_string(layout_->num_tensors()) +
                                " tensors");
  }
  std::string TensorName(int tensor_id) const {
    return "tensor \"" + layout_->specs()[tensor_id].name + "\" (id " + std::to_string(tensor_id) +
           ")";
  }
  static Status CheckCount(size_t count, int64_t expected, const std::string& place) {
    if (count == static_cast<uint64_t>(expected)) return Status::Ok();
    return InvalidArgumentError("emitted a buffer of " + std::to_string(count) + " floats for " +
                                place + ", which holds " + std::to_string(expected));
  }

  const ModelLayout* layout_;
};

// Sends what a mapper emits into the task's combining buffer. The sink interface returns
// nothing (plugins should not handle engine errors), so the first error is kept and checked
// after each mapper call; after an error the sink reads nothing more.
class BufferSink : public api::GradientSink {
 public:
  BufferSink(const ModelLayout* layout, shuffle::MapOutputBuffer* buffer)
      : layout_(layout), checker_(layout), buffer_(buffer) {}

  void AddTensor(int tensor_id, const float* gradient, size_t count) override {
    if (!status_.ok()) return;
    status_ = checker_.CheckTensor(tensor_id, count);
    const int64_t blocks = status_.ok() ? layout_->num_blocks(tensor_id) : 0;
    for (int64_t b = 0; b < blocks && status_.ok(); ++b) {
      status_ = buffer_->Add(ParamKey(tensor_id, b), gradient + b * layout_->block_size());
    }
  }

  void AddBlock(int tensor_id, int64_t block, const float* gradient, size_t count) override {
    if (!status_.ok()) return;
    status_ = checker_.CheckBlock(tensor_id, block, count);
    if (status_.ok()) status_ = buffer_->Add(ParamKey(tensor_id, block), gradient);
  }

  void AddRow(int tensor_id, int64_t row, const float* gradient, size_t count) override {
    if (!status_.ok()) return;
    status_ = checker_.CheckRow(tensor_id, row, count);
    if (status_.ok()) status_ = buffer_->Add(ParamKey(tensor_id, row), gradient);
  }

  int64_t block_size() const override { return layout_->block_size(); }
  const Status& status() const { return status_; }

 private:
  const ModelLayout* layout_;
  EmitChecker checker_;
  shuffle::MapOutputBuffer* buffer_;
  Status status_;
};

// Accumulates whole tensors, for the local SGD steps of model averaging.
class DenseSink : public api::GradientSink {
 public:
  explicit DenseSink(const ModelLayout* layout) : layout_(layout), checker_(layout) {
    for (const auto& spec : layout->specs()) {
      grads_.emplace_back(spec.row_sparse ? 0 : spec.size(), 0.0f);
    }
  }

  void AddTensor(int tensor_id, const float* gradient, size_t count) override {
    if (!status_.ok()) return;
    status_ = checker_.CheckTensor(tensor_id, count);
    if (!status_.ok()) return;
    auto& g = grads_[tensor_id];
    for (size_t i = 0; i < g.size(); ++i) g[i] += gradient[i];
  }

  void AddBlock(int tensor_id, int64_t block, const float* gradient, size_t count) override {
    if (!status_.ok()) return;
    status_ = checker_.CheckBlock(tensor_id, block, count);
    if (!status_.ok()) return;
    BlockRange r = layout_->Range(ParamKey(tensor_id, block));
    float* g = grads_[tensor_id].data() + r.offset;
    for (int64_t i = 0; i < r.length; ++i) g[i] += gradient[i];
  }

  // The job spec refuses model averaging for models with row-sparse tensors.
  void AddRow(int tensor_id, int64_t row, const float* /*gradient*/, size_t /*count*/) override {
    if (!status_.ok()) return;
    status_ = FailedPreconditionError("model averaging cannot update row " + std::to_string(row) +
                                      " of row-sparse tensor id " + std::to_string(tensor_id));
  }

  int64_t block_size() const override { return layout_->block_size(); }
  const Status& status() const { return status_; }
  std::vector<std::vector<float>>& grads() { return grads_; }
  void Zero() {
    for (auto& g : grads_) std::fill(g.begin(), g.end(), 0.0f);
  }

 private:
  const ModelLayout* layout_;
  EmitChecker checker_;
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

// Drops what it is given: the single-row retries that look for a bad record must leave the
// task's output alone.
class DiscardSink : public api::GradientSink {
 public:
  explicit DiscardSink(int64_t block_size) : block_size_(block_size) {}
  void AddTensor(int /*tensor_id*/, const float* /*gradient*/, size_t /*count*/) override {}
  void AddBlock(int /*tensor_id*/, int64_t /*block*/, const float* /*gradient*/,
                size_t /*count*/) override {}
  void AddRow(int /*tensor_id*/, int64_t /*row*/, const float* /*gradient*/,
              size_t /*count*/) override {}
  int64_t block_size() const override { return block_size_; }

 private:
  int64_t block_size_;
};

// Collects the rows a mapper's NeededRows names, checking each against the layout before
// anything is pulled; the first bad one is kept (kInvalidArgument naming the tensor and row).
class RowCollector : public api::RowRequest {
 public:
  explicit RowCollector(const ModelLayout* layout) : layout_(layout) {}

  void Need(int tensor_id, int64_t row) override {
    if (!status_.ok()) return;
    if (tensor_id < 0 || tensor_id >= layout_->num_tensors()) {
      status_ = InvalidArgumentError("NeededRows asked for row " + std::to_string(row) +
                                     " of unknown tensor id " + std::to_string(tensor_id) +
                                     "; the model has " + std::to_string(layout_->num_tensors()) +
                                     " tensors");
      return;
    }
    // Named only for an error: this runs for every row a task reads.
    auto tensor = [&] {
      return "tensor \"" + layout_->specs()[tensor_id].name + "\" (id " +
             std::to_string(tensor_id) + ")";
    };
    if (!layout_->is_row_sparse(tensor_id)) {
      status_ = InvalidArgumentError("NeededRows asked for row " + std::to_string(row) + " of " +
                                     tensor() + ", which is dense (ParamsView::tensors holds it)");
      return;
    }
    const int64_t rows = layout_->num_blocks(tensor_id);
    if (row < 0 || row >= rows) {
      status_ = InvalidArgumentError("NeededRows asked for row " + std::to_string(row) + " of " +
                                     tensor() + ", which has rows 0 to " +
                                     std::to_string(rows - 1));
      return;
    }
    keys_.emplace_back(static_cast<uint32_t>(tensor_id), static_cast<uint64_t>(row));
  }

  const Status& status() const { return status_; }
  // The keys named, ascending and distinct.
  std::vector<ParamKey> TakeKeys() {
    // The built-in models name their rows ascending already.
    if (!std::is_sorted(keys_.begin(), keys_.end())) std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    return std::move(keys_);
  }

 private:
  const ModelLayout* layout_;
  std::vector<ParamKey> keys_;
  Status status_;
};

// The rows a task maps and where each sits in its partition, to name the record a mapper
// throws on. Borrows everything.
struct TaskRows {
  const data::PartitionData* partition = nullptr;
  const int64_t* order = nullptr;  // the partition row of each task row; null: the same index
  api::Rows rows;

  int64_t PartitionRow(int64_t i) const { return order ? order[i] : i; }
};

// After a mapper call threw `what` on task rows [begin, end), calls it again on each of those
// rows alone (`call_one` takes the one-row view) and names the first row it throws on, as the
// user finds it in their data; `scope` says what the task rows are, `mapper` names the mapper
// (MapperName). A mapper that throws on no single row failed transiently, or on the combination
// of rows, and the message says so.
std::string NameThrowingRecord(const std::string& mapper, const TaskRows& task_rows, int64_t begin,
                               int64_t end, const std::string& what, const char* scope,
                               const std::function<void(const api::Rows&)>& call_one) {
  for (int64_t i = begin; i < end; ++i) {
    const std::optional<std::string> thrown =
        plugin::ThrownBy([&] { call_one(SliceRows(task_rows.rows, i, i + 1)); });
    if (!thrown) continue;
    const int64_t row = task_rows.PartitionRow(i);
    const std::string row_name = "row " + std::to_string(row) + " of the partition";
    const std::optional<std::string> record = data::DescribeRow(*task_rows.partition, row);
    if (!record) return mapper + " threw on " + row_name + ": " + *thrown;
    return mapper + " threw on record at " + *record + " (" + row_name + "): " + *thrown;
  }
  return mapper + " threw on rows [" + std::to_string(begin) + ", " + std::to_string(end) +
         ") of the " + scope + " but not on any single row: " + what;
}

// How messages name a mapper: its plugin's name, class and library, or the built-in's name.
std::string MapperName(const api::Mapper& mapper, const std::string& configured_name) {
  return plugin::DescribeMapper(
      mapper, configured_name.empty() ? "mapper" : "mapper \"" + configured_name + "\"");
}

// What every mapper call of one map task shares. Borrows everything.
struct TaskCalls {
  const MapTaskConfig& config;
  const TaskId& task;
  api::Mapper& mapper;
  const api::MapContext& ctx;
  TaskRows rows;     // the round's rows, in epoch order
  std::string name;  // MapperName
};

// Calls mapper.Gradient on task rows [begin, end), turning what it throws (naming the record)
// and sink errors into a Status.
template <typename Sink>
Status CallGradient(const TaskCalls& calls, int64_t begin, int64_t end,
                    const api::ParamsView& params, Sink& sink, api::MapStats& stats) {
  const api::Rows chunk = SliceRows(calls.rows.rows, begin, end);
  const std::optional<std::string> thrown =
      plugin::ThrownBy([&] { calls.mapper.Gradient(calls.ctx, chunk, params, sink, stats); });
  if (thrown) {
    DiscardSink discard(calls.config.layout->block_size());
    auto call_one = [&](const api::Rows& row) {
      api::MapStats ignored;
      calls.mapper.Gradient(calls.ctx, row, params, discard, ignored);
    };
    return PluginError(
        calls.task.ToString() + ": " +
        NameThrowingRecord(calls.name, calls.rows, begin, end, *thrown, "round", call_one));
  }
  if (!sink.status().ok()) {
    // A bad emission is the mapper's fault; a budget or a spill that fails is not.
    if (sink.status().code() != StatusCode::kInvalidArgument) {
      return sink.status().WithContext(calls.task.ToString());
    }
    return PluginError(calls.task.ToString() + ": " + calls.name + ": " + sink.status().message());
  }
  return Status::Ok();
}

// Asks the mapper which rows of row-sparse tensors `rows` need, pulls them into *pulled and
// points view->rows at them. `where` prefixes errors (the task, or "evaluation"); a mapper that
// throws is named with the record it throws on.
Status PullNeededRows(const ModelLayout& layout, const RowFetcher* fetch, api::Mapper& mapper,
                      const std::string& mapper_name, const std::string& where,
                      const TaskRows& task_rows, int64_t begin, int64_t end, PulledRows* pulled,
                      api::ParamsView* view) {
  if (fetch == nullptr) {
    return FailedPreconditionError(where + ": the model has row-sparse tensors but no row source");
  }
  RowCollector collector(&layout);
  const std::optional<std::string> thrown = plugin::ThrownBy(
      [&] { mapper.NeededRows(SliceRows(task_rows.rows, begin, end), collector); });
  if (thrown) {
    auto call_one = [&](const api::Rows& row) {
      RowCollector ignored(&layout);
      mapper.NeededRows(row, ignored);
    };
    return PluginError(where + ": " +
                       NameThrowingRecord(mapper_name, task_rows, begin, end, *thrown,
                                          "rows asked for", call_one));
  }
  if (!collector.status().ok()) {
    return PluginError(where + ": " + mapper_name + ": " + collector.status().message());
  }
  *pulled = PulledRows();
  MRTRAIN_RETURN_IF_ERROR((*fetch)(collector.TakeKeys(), pulled).WithContext(where));
  view->rows = pulled;
  return Status::Ok();
}

// Local SGD over the task's rows from `params`; emits -(local - params) * rows into the buffer
// sink, so that the reducers' division by the round's example count yields the weighted mean
// delta.
Status RunLocalSgd(const TaskCalls& calls, const api::ParamsView& params, BufferSink& out,
                   api::MapStats& stats) {
  const MapTaskConfig& config = calls.config;
  const ModelLayout& layout = *config.layout;
  const int64_t num_rows = calls.rows.rows.num_rows;
  std::vector<std::vector<float>> local(layout.num_tensors());
  api::ParamsView local_view;
  local_view.specs = &layout.specs();
  for (int t = 0; t < layout.num_tensors(); ++t) {
    local[t].assign(params.tensors[t], params.tensors[t] + layout.specs()[t].size());
    local_view.tensors.push_back(local[t].data());
  }
  DenseSink grads(&layout);
  const int64_t batch = std::max<int64_t>(1, config.local_batch_size);
  for (int64_t begin = 0; begin < num_rows; begin += batch) {
    const int64_t end = std::min(num_rows, begin + batch);
    grads.Zero();
    MRTRAIN_RETURN_IF_ERROR(CallGradient(calls, begin, end, local_view, grads, stats));
    const float step = static_cast<float>(config.local_learning_rate / (end - begin));
    for (int t = 0; t < layout.num_tensors(); ++t) {
      const auto& g = grads.grads()[t];
      for (size_t i = 0; i < g.size(); ++i) local[t][i] -= step * g[i];
    }
  }
  const float weight = static_cast<float>(num_rows);
  for (int t = 0; t < layout.num_tensors(); ++t) {
    std::vector<float>& delta = local[t];
    for (size_t i = 0; i < delta.size(); ++i) {
      delta[i] = (params.tensors[t][i] - delta[i]) * weight;
    }
    out.AddTensor(t, delta.data(), delta.size());
  }
  if (!out.status().ok()) return out.status().WithContext(calls.task.ToString());
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

// The stem of a task's spill run files: unique per attempt, so attempts of one task running at
// once on a worker never share a file.
std::string SpillName(const TaskId& task) {
  return "map-e" + std::to_string(task.epoch) + "-r" + std::to_string(task.round) + "-p" +
         std::to_string(task.partition) + "-a" + std::to_string(task.attempt);
}

// Runs the job's combiner over every block of the task's runs, in place.
Status Combine(const TaskId& task, api::Combiner& combiner, int64_t examples, api::TaskLog* log,
               std::vector<shuffle::Run>* runs) {
  api::CombineContext ctx;
  ctx.epoch = task.epoch;
  ctx.round = task.round;
  ctx.partition = task.partition;
  ctx.examples = examples;
  ctx.log = log;
  return plugin::CallPlugin(task.ToString() + ": " + plugin::DescribeCombiner(combiner, "combiner"),
                            "Combine", [&] {
                              for (shuffle::Run& run : *runs) {
                                for (size_t i = 0; i < run.keys.size(); ++i) {
                                  ctx.tensor = static_cast<int>(run.keys[i].tensor());
                                  ctx.block = static_cast<int64_t>(run.keys[i].block());
                                  combiner.Combine(ctx, run.values.data() + run.offsets[i],
                                                   run.offsets[i + 1] - run.offsets[i]);
                                }
                              }
                            });
}

}  // namespace

Result<MapTaskOutput> RunMapTask(const MapTaskConfig& config, const TaskId& task,
                                 const data::PartitionData& partition,
                                 const api::ParamsView& params, api::Mapper& mapper,
                                 const shuffle::Partitioner& partitioner, RowOrderCache& row_orders,
                                 api::Combiner* combiner, const RowFetcher* fetch_rows) {
  auto order = row_orders.Get(task.epoch, task.partition, partition.num_rows);
  auto [begin, end] = RoundRange(partition.num_rows, task.round, config.rounds_per_epoch);
  data::PartitionData slice;
  partition.Gather(order->data() + begin, end - begin, &slice);

  api::RandomStream random(config.seed, kMapperStream,
                           task.epoch * config.rounds_per_epoch + task.round, task.partition);
  SpdlogTaskLog log(task);
  api::MapContext ctx;
  ctx.epoch = task.epoch;
  ctx.round = task.round;
  ctx.partition = task.partition;
  ctx.random = &random;
  ctx.log = &log;
  const TaskCalls calls{
      config,
      task,
      mapper,
      ctx,
      TaskRows{&partition, order->data() + begin, slice.View(config.num_features)},
      MapperName(mapper, config.mapper_name)};
  const int64_t num_rows = calls.rows.rows.num_rows;
  api::ParamsView task_params = params;
  PulledRows pulled;
  if (config.layout->has_row_sparse() && num_rows > 0) {
    MRTRAIN_RETURN_IF_ERROR(PullNeededRows(*config.layout, fetch_rows, mapper, calls.name,
                                           task.ToString(), calls.rows, 0, num_rows, &pulled,
                                           &task_params));
  }

  shuffle::MapOutputBuffer buffer(config.layout, &partitioner, config.buffer_bytes,
                                  shuffle::SpillOptions{config.spill_dir, SpillName(task)});
  // A task's gradient usually has a row for each row it read: sized once, not by doubling.
  if (pulled.size() > 0) buffer.ReserveKeys(pulled.size() + config.layout->keys().size());
  BufferSink sink(config.layout, &buffer);
  MapTaskOutput out;
  if (config.model_averaging) {
    if (num_rows > 0) MRTRAIN_RETURN_IF_ERROR(RunLocalSgd(calls, task_params, sink, out.stats));
  } else {
    const int64_t chunk = std::max<int64_t>(1, config.chunk_rows);
    for (int64_t b = 0; b < num_rows; b += chunk) {
      MRTRAIN_RETURN_IF_ERROR(
          CallGradient(calls, b, std::min(num_rows, b + chunk), task_params, sink, out.stats));
    }
  }
  Result<std::vector<shuffle::Run>> runs = buffer.Finish();
  if (!runs.ok()) return runs.status().WithContext(task.ToString());
  out.runs = std::move(*runs);
  out.spilled_runs = buffer.spilled_runs();
  out.spilled_bytes = buffer.spilled_bytes();
  if (combiner) {
    MRTRAIN_RETURN_IF_ERROR(Combine(task, *combiner, out.stats.examples, &log, &out.runs));
  }
  return out;
}

Result<api::MapStats> EvaluatePartition(const data::PartitionData& partition, int64_t num_features,
                                        int64_t chunk_rows, const api::ParamsView& params,
                                        api::Mapper& mapper, const ModelLayout* layout,
                                        const RowFetcher* fetch_rows) {
  const TaskRows task_rows{&partition, nullptr, partition.View(num_features)};
  const api::Rows& rows = task_rows.rows;
  api::MapStats stats;
  const int64_t chunk = std::max<int64_t>(1, chunk_rows);
  api::ParamsView chunk_params = params;
  PulledRows pulled;
  for (int64_t b = 0; b < rows.num_rows; b += chunk) {
    const int64_t e = std::min(rows.num_rows, b + chunk);
    if (layout != nullptr && layout->has_row_sparse()) {
      MRTRAIN_RETURN_IF_ERROR(PullNeededRows(*layout, fetch_rows, mapper, MapperName(mapper, ""),
                                             "evaluation", task_rows, b, e, &pulled,
                                             &chunk_params));
    }
    const std::optional<std::string> thrown =
        plugin::ThrownBy([&] { mapper.Evaluate(SliceRows(rows, b, e), chunk_params, stats); });
    if (!thrown) continue;
    auto call_one = [&](const api::Rows& row) {
      api::MapStats ignored;
      mapper.Evaluate(row, chunk_params, ignored);
    };
    return PluginError("evaluation failed: " + NameThrowingRecord(MapperName(mapper, ""), task_rows,
                                                                  b, e, *thrown, "partition",
                                                                  call_one));
  }
  return stats;
}

}  // namespace mrtrain::runtime
