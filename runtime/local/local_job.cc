#include "runtime/local/local_job.h"

#include <cmath>
#include <exception>
#include <thread>

#include "engine/base/log.h"
#include "engine/base/thread_pool.h"
#include "engine/data/dataset.h"
#include "engine/data/partition_cache.h"
#include "engine/models/registry.h"
#include "engine/plugin/plugin_library.h"
#include "engine/tensor/blas.h"
#include "engine/updaters/registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/local/local_executor.h"
#include "runtime/worker/reducer_shard.h"
#include "runtime/worker/shard_host.h"

namespace mrtrain::runtime {
namespace {

using PartitionList = std::vector<std::shared_ptr<const data::PartitionData>>;

int ThreadsFor(const jobs::JobSpec& spec) {
  if (spec.threads > 0) return spec.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Parses every partition of a dataset in parallel through the partition cache ("parse once":
// local mode needs all of them before training, to learn the data's shape, and keeps them for
// all epochs). Errors name the set and the partition's extent.
Result<PartitionList> LoadAll(const data::DatasetSpec& spec, const std::string& set,
                              ThreadPool& pool) {
  auto opened = data::Dataset::Open(spec);
  if (!opened.ok()) return opened.status().WithContext("data." + set);
  const data::Dataset& dataset = **opened;
  data::PartitionCache cache(&dataset);
  const int64_t n = dataset.num_partitions();
  std::vector<Result<std::shared_ptr<const data::PartitionData>>> loaded(
      n, InternalError("not loaded"));
  pool.ParallelFor(n, [&](int64_t p) { loaded[p] = cache.Get(p); });
  PartitionList parts;
  for (int64_t p = 0; p < n; ++p) {
    if (!loaded[p].ok()) {
      return loaded[p].status().WithContext("data." + set + " partition " + std::to_string(p) +
                                            " (" + dataset.DescribePartition(p) + ")");
    }
    parts.push_back(*loaded[p]);
  }
  return parts;
}

int64_t SkippedIn(const PartitionList& parts, const std::string& set) {
  int64_t skipped = 0;
  for (const auto& p : parts) {
    skipped += p->skipped_records;
    for (const auto& why : p->skipped_samples)
      Logger("data")->warn("data.{}: skipped {}", set, why);
  }
  return skipped;
}

// The data shape every mapper is told: the widest partition, and 1 + the largest label when
// every label is a non-negative integer (a class index).
api::DataShape ShapeOf(const PartitionList& parts) {
  api::DataShape shape;
  bool integral = true;
  float max_label = -1;
  for (const auto& p : parts) {
    shape.num_features = std::max(shape.num_features, p->num_cols);
    shape.is_sparse = p->is_sparse;
    for (float y : p->labels) {
      if (y < 0 || y != std::floor(y)) integral = false;
      max_label = std::max(max_label, y);
    }
  }
  shape.num_classes = integral && max_label >= 0 ? static_cast<int64_t>(max_label) + 1 : 0;
  return shape;
}

Status CheckWidth(const PartitionList& parts, const api::DataShape& shape, const std::string& set) {
  for (size_t p = 0; p < parts.size(); ++p) {
    const auto& part = *parts[p];
    if (part.is_sparse != shape.is_sparse ||
        (part.is_sparse ? part.num_cols > shape.num_features
                        : part.num_cols != shape.num_features)) {
      if (part.num_rows == 0) continue;
      return InvalidArgumentError(
          "data." + set + " partition " + std::to_string(p) + " has " +
          std::to_string(part.num_cols) + (part.is_sparse ? " sparse" : "") +
          " features; the training data has " + std::to_string(shape.num_features) +
          (shape.is_sparse ? " sparse" : ""));
    }
  }
  return Status::Ok();
}

Result<std::vector<api::TensorSpec>> DescribeModel(api::Mapper& mapper,
                                                   const api::DataShape& shape) {
  try {
    return mapper.DescribeModel(shape);
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("model: ") + e.what());
  }
}

// Loads the job's plugin libraries; errors name `plugins` and the library.
Result<plugin::PluginSet> LoadPlugins(const jobs::JobSpec& spec) {
  auto loaded = plugin::PluginSet::Load(spec.plugins);
  if (!loaded.ok()) return loaded.status().WithContext("plugins");
  return loaded;
}

Result<std::unique_ptr<api::Mapper>> MakeMapper(const jobs::JobSpec& spec,
                                                const plugin::PluginSet& plugins) {
  if (spec.model_plugin.empty()) {
    return models::CreateBuiltinMapper(spec.model_type, spec.model_params);
  }
  auto mapper = plugins.CreateMapper(spec.model_plugin, spec.model_params);
  if (!mapper.ok()) return mapper.status().WithContext("model.plugin");
  return mapper;
}

Result<std::unique_ptr<api::Reducer>> MakeRule(const jobs::JobSpec& spec,
                                               const plugin::PluginSet& plugins) {
  if (spec.update_plugin.empty()) {
    return updaters::CreateBuiltinReducer(spec.update_rule, spec.update_params);
  }
  auto rule = plugins.CreateReducer(spec.update_plugin, spec.update_params);
  if (!rule.ok()) return rule.status().WithContext("update.plugin");
  return rule;
}

}  // namespace

Status ValidateJob(const jobs::JobSpec& spec) {
  auto check_opens = [](const data::DatasetSpec& ds, const std::string& set) {
    auto opened = data::Dataset::Open(ds);
    return opened.ok() ? Status::Ok() : opened.status().WithContext("data." + set);
  };
  MRTRAIN_RETURN_IF_ERROR(check_opens(spec.train, "train"));
  if (spec.test) MRTRAIN_RETURN_IF_ERROR(check_opens(*spec.test, "test"));
  if (spec.validation) MRTRAIN_RETURN_IF_ERROR(check_opens(*spec.validation, "validation"));
  MRTRAIN_ASSIGN_OR_RETURN(plugin::PluginSet plugins, LoadPlugins(spec));
  MRTRAIN_RETURN_IF_ERROR(MakeMapper(spec, plugins).status());
  return MakeRule(spec, plugins).status();
}

Result<TrainingResult> RunLocalJob(const jobs::JobSpec& spec, const LocalRunOptions& options,
                                   TrainingObserver* observer) {
  auto log = Logger("local");
  const int threads = ThreadsFor(spec);
  // Tasks run in parallel on our pool; OpenBLAS stays single-threaded inside each, so results
  // do not depend on the core count and threads never oversubscribe the cores.
  blas::SetBlasThreads(1);
  ThreadPool loader(threads);

  // Loaded first, so a bad library fails the job before any data is read. Every mapper and
  // reducer made from them keeps its library loaded for as long as it lives.
  MRTRAIN_ASSIGN_OR_RETURN(plugin::PluginSet plugins, LoadPlugins(spec));
  LocalJobParts parts;
  MRTRAIN_ASSIGN_OR_RETURN(parts.train, LoadAll(spec.train, "train", loader));
  if (spec.test) {
    MRTRAIN_ASSIGN_OR_RETURN(parts.test, LoadAll(*spec.test, "test", loader));
  }
  if (spec.validation) {
    MRTRAIN_ASSIGN_OR_RETURN(parts.validation, LoadAll(*spec.validation, "validation", loader));
  }
  JobMetadata metadata;
  metadata.skipped_records = SkippedIn(parts.train, "train") + SkippedIn(parts.test, "test") +
                             SkippedIn(parts.validation, "validation");
  api::DataShape shape = ShapeOf(parts.train);
  if (spec.train.num_features > 0) shape.num_features = spec.train.num_features;
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(parts.test, shape, "test"));
  MRTRAIN_RETURN_IF_ERROR(CheckWidth(parts.validation, shape, "validation"));
  parts.num_features = shape.num_features;

  for (int t = 0; t < threads; ++t) {
    MRTRAIN_ASSIGN_OR_RETURN(auto mapper, MakeMapper(spec, plugins));
    parts.mappers.push_back(std::move(mapper));
  }
  std::vector<api::TensorSpec> specs;
  for (auto& mapper : parts.mappers) {  // every instance must learn the shape
    MRTRAIN_ASSIGN_OR_RETURN(specs, DescribeModel(*mapper, shape));
  }
  MRTRAIN_ASSIGN_OR_RETURN(ModelLayout layout, ModelLayout::Create(specs, spec.block_size));
  parts.layout = std::make_shared<const ModelLayout>(std::move(layout));

  metadata.fingerprint = spec.Fingerprint();
  metadata.model_type = spec.model_type;
  metadata.model_params = spec.model_params;
  metadata.data_shape = shape;
  metadata.update_rule = spec.update_rule;

  MRTRAIN_ASSIGN_OR_RETURN(auto probe_rule, MakeRule(spec, plugins));
  const int num_slots = probe_rule->NumSlots();
  constexpr int kMaxSlots = 64;  // a plugin's answer sizes allocations: bound it
  if (num_slots < 0 || num_slots > kMaxSlots) {
    return PluginError("update rule " + spec.update_rule + " asks for " +
                       std::to_string(num_slots) + " state slots; allowed 0 to " +
                       std::to_string(kMaxSlots));
  }
  int64_t start_epoch = 0;
  parts.state = ModelState::Zeros(parts.layout, num_slots);
  InitializeParameters(spec.init, static_cast<float>(spec.init_scale), spec.seed, &parts.state);
  if (options.resume) {
    CheckpointDir checkpoints(spec.output_dir + "/checkpoints", spec.checkpoint_keep);
    auto latest = checkpoints.LoadLatest();
    if (latest.ok()) {
      if (latest->fingerprint != metadata.fingerprint) {
        return FailedPreconditionError(
            "cannot resume: the checkpoints in " + spec.output_dir +
            "/checkpoints were written by a different job spec (fingerprint " +
            latest->fingerprint.substr(0, 12) + ", this spec " +
            metadata.fingerprint.substr(0, 12) + ")");
      }
      if (latest->state.tensors.size() != parts.state.tensors.size() ||
          latest->state.slots.size() != parts.state.slots.size()) {
        return FailedPreconditionError("cannot resume: the checkpoint's model does not match");
      }
      start_epoch = latest->epochs_done;
      parts.state = std::move(latest->state);
      parts.state.layout = parts.layout;
      log->info("resuming job {} after epoch {}", spec.name, start_epoch);
    } else if (latest.status().code() == StatusCode::kNotFound) {
      log->info("no checkpoint to resume in {}; starting from scratch", spec.output_dir);
    } else {
      return latest.status();
    }
  }

  parts.partitioner = shuffle::MakePartitioner(
      spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort ? shuffle::ShuffleMode::kSort
                                                             : shuffle::ShuffleMode::kHash,
      *parts.layout, spec.reducers);
  for (int s = 0; s < spec.reducers; ++s) {
    MRTRAIN_ASSIGN_OR_RETURN(auto rule, MakeRule(spec, plugins));
    auto shard = std::make_unique<ReducerShard>(
        s, parts.layout, shuffle::KeysOfShard(*parts.partitioner, *parts.layout, s),
        std::move(rule), static_cast<float>(spec.l1), static_cast<float>(spec.l2));
    shard->LoadFrom(parts.state);
    parts.shards.push_back(
        std::make_unique<ShardHost>(std::move(shard), static_cast<int64_t>(parts.train.size())));
  }
  log->info(
      "job {}: {} train partitions, {} parameters in {} blocks, {} reducer shards, {} threads",
      spec.name, parts.train.size(), parts.layout->num_parameters(), parts.layout->keys().size(),
      spec.reducers, threads);
  LocalExecutor executor(spec, std::move(parts), threads);
  return RunTrainingLoop(spec, metadata, executor, start_epoch, observer);
}

}  // namespace mrtrain::runtime
