#include "runtime/job/job_setup.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "engine/data/dataset.h"
#include "engine/models/registry.h"
#include "engine/plugin/plugin_call.h"
#include "engine/updaters/registry.h"
#include "runtime/job/spec_location.h"

namespace mrtrain::runtime {
namespace {

void MakeAbsolute(const std::string& working_dir, std::string* path) {
  if (path->empty() || std::filesystem::path(*path).is_absolute()) return;
  *path = (std::filesystem::path(working_dir) / *path).lexically_normal().string();
}

}  // namespace

void ResolveRelativePaths(const std::string& working_dir, jobs::JobSpec* spec) {
  MakeAbsolute(working_dir, &spec->train.path);
  if (spec->test) MakeAbsolute(working_dir, &spec->test->path);
  if (spec->validation) MakeAbsolute(working_dir, &spec->validation->path);
  for (std::string& p : spec->plugins) MakeAbsolute(working_dir, &p);
  MakeAbsolute(working_dir, &spec->output_dir);
}

Result<plugin::PluginSet> LoadPlugins(const jobs::JobSpec& spec) {
  auto loaded = plugin::PluginSet::Load(spec.plugins, spec.plugin_names);
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

Result<std::unique_ptr<api::Combiner>> MakeCombiner(const jobs::JobSpec& spec,
                                                    const plugin::PluginSet& plugins) {
  if (spec.combiner_plugin.empty()) return std::unique_ptr<api::Combiner>();
  auto combiner = plugins.CreateCombiner(spec.combiner_plugin, spec.combiner_params);
  if (!combiner.ok()) return combiner.status().WithContext("combiner.plugin");
  return combiner;
}

namespace {

// The rule's NumSlots() (plugin code: guarded), refused outside 0..kMaxSlots.
Status CheckSlots(api::Reducer& rule, const jobs::JobSpec& spec) {
  const std::string who = plugin::DescribeReducer(rule, "update rule " + spec.update_rule);
  int num_slots = 0;
  MRTRAIN_RETURN_IF_ERROR(
      plugin::CallPlugin(who, "NumSlots", [&] { num_slots = rule.NumSlots(); }));
  if (num_slots < 0 || num_slots > kMaxSlots) {
    return PluginError(who + " asks for " + std::to_string(num_slots) +
                       " state slots; allowed 0 to " + std::to_string(kMaxSlots));
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<api::Reducer>> MakeRule(const jobs::JobSpec& spec,
                                               const plugin::PluginSet& plugins) {
  std::unique_ptr<api::Reducer> rule;
  if (spec.update_plugin.empty()) {
    MRTRAIN_ASSIGN_OR_RETURN(rule,
                             updaters::CreateBuiltinReducer(spec.update_rule, spec.update_params));
  } else {
    auto made = plugins.CreateReducer(spec.update_plugin, spec.update_params);
    if (!made.ok()) return made.status().WithContext("update.plugin");
    rule = std::move(*made);
  }
  MRTRAIN_RETURN_IF_ERROR(CheckSlots(*rule, spec));
  return rule;
}

PartitionSummary Summarize(const data::PartitionData& partition) {
  PartitionSummary s;
  s.rows = partition.num_rows;
  s.num_cols = partition.num_cols;
  s.is_sparse = partition.is_sparse;
  const float* labels = partition.label_data();  // owned, or borrowed from a mapped shard
  for (int64_t r = 0; r < partition.num_rows; ++r) {
    const float y = labels[r];
    if (y < 0 || y != std::floor(y)) s.labels_integral = false;
    s.max_label = std::max(s.max_label, y);
  }
  s.skipped_records = partition.skipped_records;
  s.skipped_samples = partition.skipped_samples;
  return s;
}

api::DataShape ShapeOf(const std::vector<PartitionSummary>& train, const jobs::JobSpec& spec) {
  api::DataShape shape;
  bool integral = true;
  float max_label = -1;
  for (const PartitionSummary& p : train) {
    shape.num_features = std::max(shape.num_features, p.num_cols);
    shape.is_sparse = p.is_sparse;
    integral = integral && p.labels_integral;
    max_label = std::max(max_label, p.max_label);
  }
  shape.num_classes = integral && max_label >= 0 ? static_cast<int64_t>(max_label) + 1 : 0;
  if (spec.train.num_features > 0) shape.num_features = spec.train.num_features;
  return shape;
}

Status CheckSkipped(const std::vector<PartitionSummary>& parts, const data::DatasetSpec& ds,
                    const std::string& set) {
  int64_t skipped = 0, kept = 0;
  for (const PartitionSummary& p : parts) {
    skipped += p.skipped_records;
    kept += p.rows;
  }
  const int64_t total = skipped + kept;
  if (skipped == 0 || static_cast<double>(skipped) <= ds.max_skipped_fraction * total) {
    return Status::Ok();
  }
  char allowed[32];
  std::snprintf(allowed, sizeof(allowed), "%g", ds.max_skipped_fraction);
  std::string first;
  for (const PartitionSummary& p : parts) {
    if (first.empty() && !p.skipped_samples.empty()) first = p.skipped_samples.front();
  }
  return InvalidArgumentError("data." + set + ": " + std::to_string(skipped) + " of " +
                              std::to_string(total) + " records were bad and skipped, more than " +
                              "max_skipped_fraction " + allowed + " allows (the first: " + first +
                              ")");
}

Status CheckWidth(const std::vector<PartitionSummary>& parts, const api::DataShape& shape,
                  const std::string& set) {
  for (size_t p = 0; p < parts.size(); ++p) {
    const PartitionSummary& part = parts[p];
    if (part.rows == 0) continue;
    if (part.is_sparse != shape.is_sparse ||
        (part.is_sparse ? part.num_cols > shape.num_features
                        : part.num_cols != shape.num_features)) {
      return InvalidArgumentError(
          "data." + set + " partition " + std::to_string(p) + " has " +
          std::to_string(part.num_cols) + (part.is_sparse ? " sparse" : "") +
          " features; the training data has " + std::to_string(shape.num_features) +
          (shape.is_sparse ? " sparse" : ""));
    }
  }
  return Status::Ok();
}

Result<ModelLayout> LayoutFor(api::Mapper& mapper, const api::DataShape& shape,
                              const jobs::JobSpec& spec) {
  std::vector<api::TensorSpec> specs;
  const std::string who = plugin::DescribeMapper(mapper, "");
  const std::optional<std::string> thrown =
      plugin::ThrownBy([&] { specs = mapper.DescribeModel(shape); });
  // A built-in refuses data it cannot take (sparse input to a dense model): the user's mistake.
  if (thrown && who.empty()) return InvalidArgumentError("model: " + *thrown);
  if (thrown) return PluginError("model.plugin: " + who + ": DescribeModel failed: " + *thrown);
  MRTRAIN_ASSIGN_OR_RETURN(ModelLayout layout, ModelLayout::Create(specs, spec.block_size));
  if (layout.has_row_sparse() && spec.mode == jobs::JobSpec::Mode::kModelAveraging) {
    return InvalidArgumentError(
        "training.mode: model_averaging needs whole tensors, and this model has row-sparse "
        "ones (wide sparse input): use the default gradient mode");
  }
  if (layout.has_row_sparse() && spec.staleness > 0) {
    // Shard hosts keep older versions of dense blocks only (a copy per version); rows are
    // served at the latest step.
    return InvalidArgumentError(
        "training.staleness: " + std::to_string(spec.staleness) +
        " needs whole tensors, and this model has row-sparse ones (wide sparse input): use 0");
  }
  return layout;
}

namespace {

// The errors ValidateJob finds, each located as the spec parser's are.
class ValidationErrors {
 public:
  explicit ValidationErrors(const jobs::JobSpec& spec) : spec_(spec) {}

  // Records `status` as "<where key_path is>: <key_path>: <message>"; `status` carries no context.
  void Add(const std::string& key_path, const Status& status) {
    if (status.ok()) return;
    if (first_.ok()) first_ = status;
    lines_ += (lines_.empty() ? "" : "\n") + LocateKey(spec_, key_path) + ": " + key_path + ": " +
              status.message();
  }

  // Records a failure to create plugin object `section`.plugin: its name unknown, or its
  // constructor refusing section.params (located at the key the message names).
  void AddPlugin(const std::string& section, const api::Hyperparameters& params,
                 const Status& status) {
    const std::string plugin_key = section + ".plugin";
    Add(status.code() == StatusCode::kPluginError
            ? ParamsKeyIn(status.message(), params, section, plugin_key)
            : plugin_key,
        status);
  }

  // Every error, one a line, with the first one's code; Ok when there are none.
  Status ToStatus() const { return first_.ok() ? first_ : Status(first_.code(), lines_); }

 private:
  const jobs::JobSpec& spec_;
  Status first_;
  std::string lines_;
};

}  // namespace

Status ValidateJob(const jobs::JobSpec& spec) {
  ValidationErrors errors(spec);
  auto check_opens = [&](const data::DatasetSpec& ds, const std::string& set) {
    auto opened = data::Dataset::Open(ds);
    if (!opened.ok()) errors.Add("data." + set + ".path", opened.status());
  };
  check_opens(spec.train, "train");
  if (spec.test) check_opens(*spec.test, "test");
  if (spec.validation) check_opens(*spec.validation, "validation");

  auto plugins = plugin::PluginSet::Load(spec.plugins, spec.plugin_names);
  errors.Add("plugins", plugins.status());
  // Without the libraries, plugin names cannot be checked; built-ins still are.
  const bool loaded = plugins.ok();
  if (spec.model_plugin.empty()) {
    errors.Add("model.type",
               models::CreateBuiltinMapper(spec.model_type, spec.model_params).status());
  } else if (loaded) {
    errors.AddPlugin("model", spec.model_params,
                     plugins->CreateMapper(spec.model_plugin, spec.model_params).status());
  }
  if (!spec.combiner_plugin.empty() && loaded) {
    errors.AddPlugin("combiner", spec.combiner_params,
                     plugins->CreateCombiner(spec.combiner_plugin, spec.combiner_params).status());
  }
  if (spec.update_plugin.empty()) {
    auto rule = updaters::CreateBuiltinReducer(spec.update_rule, spec.update_params);
    errors.Add("update.rule", rule.ok() ? CheckSlots(**rule, spec) : rule.status());
  } else if (loaded) {
    auto rule = plugins->CreateReducer(spec.update_plugin, spec.update_params);
    errors.AddPlugin("update", spec.update_params,
                     rule.ok() ? CheckSlots(**rule, spec) : rule.status());
  }
  return errors.ToStatus();
}

}  // namespace mrtrain::runtime
