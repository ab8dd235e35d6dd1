#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/combiner.h"
#include "engine/api/mapper.h"
#include "engine/api/reducer.h"
#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/plugin/plugin_library.h"
#include "engine/tensor/model_layout.h"
#include "jobs/spec/job_spec.h"

// The steps of setting a job up that the master, the workers and `mrtrain validate` share, so
// that every process builds the same model from the same spec. Errors name the spec key.
namespace mrtrain::runtime {

// Makes the spec's relative paths (data, plugins, output) absolute against `working_dir`, the
// submitter's directory: a worker started elsewhere must read the files the user meant.
void ResolveRelativePaths(const std::string& working_dir, jobs::JobSpec* spec);

// The job's plugin libraries; errors name `plugins` and the library.
Result<plugin::PluginSet> LoadPlugins(const jobs::JobSpec& spec);

// A mapper of the spec's model (built-in or plugin).
Result<std::unique_ptr<api::Mapper>> MakeMapper(const jobs::JobSpec& spec,
                                                const plugin::PluginSet& plugins);

// The spec's combiner, or null when it has none.
Result<std::unique_ptr<api::Combiner>> MakeCombiner(const jobs::JobSpec& spec,
                                                    const plugin::PluginSet& plugins);

// An update rule of the spec; kPluginError when a plugin asks for a slot count outside
// 0..kMaxSlots (it sizes allocations).
inline constexpr int kMaxSlots = 64;
Result<std::unique_ptr<api::Reducer>> MakeRule(const jobs::JobSpec& spec,
                                               const plugin::PluginSet& plugins);

// What the master learns of one loaded partition to fix the data's shape.
struct PartitionSummary {
  int64_t rows = 0;
  int64_t num_cols = 0;
  bool is_sparse = false;
  bool labels_integral = true;  // every label a non-negative whole number
  float max_label = -1;         // -1 for no rows
  int64_t skipped_records = 0;
  std::vector<std::string> skipped_samples;
};
PartitionSummary Summarize(const data::PartitionData& partition);

// The shape every mapper is told: the widest training partition (or the spec's
// data.train.num_features), and 1 + the largest label when every label is a class index.
api::DataShape ShapeOf(const std::vector<PartitionSummary>& train, const jobs::JobSpec& spec);

// kInvalidArgument with the counts when the records skipped under on_bad_record: skip are more
// than the data set's max_skipped_fraction of all its records (skipped and kept): a job that
// trains on what is left of mostly bad data must not end as a success.
Status CheckSkipped(const std::vector<PartitionSummary>& parts, const data::DatasetSpec& ds,
                    const std::string& set);

// kInvalidArgument, naming the set and partition, when a held-out partition has rows of another
// width or kind than the training data.
Status CheckWidth(const std::vector<PartitionSummary>& parts, const api::DataShape& shape,
                  const std::string& set);

// The model's tensors for `shape` as `mapper` describes them, cut into the spec's blocks.
// Errors (a mapper that throws) name `model`.
Result<ModelLayout> LayoutFor(api::Mapper& mapper, const api::DataShape& shape,
                              const jobs::JobSpec& spec);

// Checks what can be checked without training: the data paths resolve and their headers
// parse, the plugins load, the model type, combiner and update rule exist and accept their
// hyperparameters. Reports every error found, one a line, located as the spec parser's are
// (jobs/spec/SCHEMA.md): "job.yaml:9: model.params.delta: mapper "huber" (HuberMapper in
// libx.so): constructor failed: delta must be > 0"; the status has the first error's code.
Status ValidateJob(const jobs::JobSpec& spec);

}  // namespace mrtrain::runtime
