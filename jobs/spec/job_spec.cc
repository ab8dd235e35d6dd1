#include "jobs/spec/job_spec.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <utility>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "engine/models/fm_model.h"
#include "jobs/spec/spec_limits.h"
#include "jobs/spec/spec_overrides.h"
#include "jobs/spec/yaml_reader.h"

namespace mrtrain::jobs {
namespace {

// A learning rate (> 0). They reach the update rules as float: above the largest float they
// become infinite and turn the model into NaN at the first step, so they are refused here.
std::optional<double> StepSize(SpecMap* m, const std::string& key) {
  std::optional<double> v = m->Number(key, NumberRange::Positive());
  if (v && *v > std::numeric_limits<float>::max()) {
    m->Report(key, "got " + FormatNumber(*v) +
                       ", which is infinite as a float (the largest float is 3.4028235e+38)");
    return std::nullopt;
  }
  return v;
}

// Each section reader validates one part of the tree into *spec, records every error it finds
// in the SpecErrors behind the SpecMap, and leaves defaults in place for what is absent or bad.
// Keys that only make sense for some value of another key (a rule, a model type, a format) are
// checked against that value only when the value itself is valid, so one typo gives one error.

bool OneOf(const std::string& v, const std::vector<std::string>& set) {
  for (const std::string& s : set) {
    if (v == s) return true;
  }
  return false;
}

// Reports `key` when it is set although it belongs to other values of `selector`:
//   update.momentum: only for rules momentum, nesterov; update.rule is adam
void RejectUnless(SpecMap* m, const std::string& key, const std::vector<std::string>& owners,
                  const std::string& owner_noun, const std::string& selector_path,
                  const std::string& selected) {
  if (!m->Has(key) || OneOf(selected, owners)) return;
  m->Report(key, "only for " + owner_noun + (owners.size() > 1 ? "s " : " ") + JoinNames(owners) +
                     "; " + selector_path + " is " + selected);
}

void ReadCsvOptions(SpecMap* m, data::DatasetSpec* ds) {
  if (auto v = m->Bool("header")) ds->csv_header = *v;
  if (m->IsIntText("label_column")) {
    if (auto v = m->Int("label_column", IntRange{})) ds->label_column = std::to_string(*v);
  } else if (auto v = m->String("label_column")) {
    ds->label_column = *v;
    // Caught here rather than when the dataset opens, so the message has a line number.
    if (!ds->csv_header) {
      m->Report("label_column", "the column name '" + *v + "' needs " + m->PathOf("header") +
                                    ": true; without a header give a 0-based index");
    }
  }
  if (auto v = m->String("delimiter")) {
    if (v->size() == 1 && *v != "\n" && *v != "\r") {
      ds->delimiter = (*v)[0];
    } else {
      m->Report("delimiter",
                "expected a single character such as ',' or \"\\t\", got '" + *v + "'");
    }
  }
}

// hash_bits: 2^hash_bits columns must fit the budget that max_decoded_mb sets, like features.
void ReadHashBits(SpecMap* m, data::DatasetSpec* ds) {
  std::optional<int64_t> bits = m->Int("hash_bits", IntRange{1, data::kMaxHashBits});
  if (!bits) return;
  if ((int64_t{1} << *bits) > data::MaxFeatures(*ds)) {
    m->Report("hash_bits", "2^" + std::to_string(*bits) + " features is over the limit of " +
                               std::to_string(data::MaxFeatures(*ds)) + " that max_decoded_mb (" +
                               std::to_string(ds->max_decoded_mb) + " MiB) allows");
    return;
  }
  if (m->Has("features")) {
    m->Report("hash_bits",
              "give features or hash_bits, not both: hashing makes the width "
              "2^hash_bits");
    return;
  }
  ds->hash_bits = static_cast<int>(*bits);
}

std::optional<data::DatasetSpec> ReadDataset(SpecMap* data_map, const std::string& key,
                                             bool is_train) {
  std::optional<SpecMap> m =
      data_map->Map(key, {"path", "format", "partitions", "on_bad_record", "header", "label_column",
                          "delimiter", "features", "zero_based", "hash_bits", "labels", "scale",
                          "max_decoded_mb", "max_skipped_fraction", "cache"});
  if (!m) return std::nullopt;
  data::DatasetSpec ds;
  if (auto v = m->String("path")) ds.path = *v;
  if (!m->Has("path")) m->ReportMissing("path", "expected a file, a glob or a folder");

  const std::vector<std::string> formats = {"libsvm", "csv", "idx", "shards", "criteo"};
  std::optional<std::string> format = m->Choice("format", formats);
  if (!m->Has("format")) m->ReportMissing("format", "allowed: " + JoinNames(formats));
  if (format == "libsvm") ds.format = data::DataFormat::kLibsvm;
  if (format == "csv") ds.format = data::DataFormat::kCsv;
  if (format == "idx") ds.format = data::DataFormat::kIdx;
  if (format == "shards") ds.format = data::DataFormat::kShards;
  if (format == "criteo") ds.format = data::DataFormat::kCriteo;

  if (auto v = m->Int("partitions", IntRange{1, data::kMaxPartitions})) ds.num_partitions = *v;
  if (is_train && !m->Has("partitions")) {
    m->ReportMissing("partitions", "expected an integer >= 1");
  }
  if (auto v = m->Choice("on_bad_record", {"fail", "skip"})) {
    ds.on_bad_record = *v == "skip" ? data::BadRecordPolicy::kSkip : data::BadRecordPolicy::kFail;
  }
  if (auto v = m->Choice("cache", {"memory", "disk"})) {
    ds.cache = *v == "disk" ? data::CacheMode::kDisk : data::CacheMode::kMemory;
  }
  if (auto v = m->Number("scale", NumberRange::NonNegative())) ds.scale = *v;
  if (auto v = m->Int("max_decoded_mb", IntRange{1, data::kMaxDecodedMbLimit})) {
    ds.max_decoded_mb = *v;
  }
  if (auto v = m->Number("max_skipped_fraction", NumberRange{0, false, 1, false})) {
    ds.max_skipped_fraction = *v;
  }
  if (!format) return ds;

  const std::string format_path = m->PathOf("format");
  for (const char* k : {"header", "label_column", "delimiter"}) {
    RejectUnless(&*m, k, {"csv"}, "format", format_path, *format);
  }
  for (const char* k : {"features", "zero_based"}) {
    RejectUnless(&*m, k, {"libsvm"}, "format", format_path, *format);
  }
  RejectUnless(&*m, "labels", {"idx"}, "format", format_path, *format);
  RejectUnless(&*m, "hash_bits", {"libsvm", "criteo"}, "format", format_path, *format);
  // Shards hold rows as their conversion scaled them.
  RejectUnless(&*m, "scale", {"libsvm", "csv", "idx"}, "format", format_path, *format);
  if (*format == "csv") ReadCsvOptions(&*m, &ds);
  if (*format == "libsvm") {
    if (auto v = m->Int("features", IntRange{0, data::MaxFeatures(ds)})) ds.num_features = *v;
    if (auto v = m->Bool("zero_based")) ds.zero_based = *v;
  }
  if (*format == "libsvm" || *format == "criteo") ReadHashBits(&*m, &ds);
  if (*format == "criteo" && !m->Has("hash_bits")) {
    m->ReportMissing("hash_bits",
                     "criteo features are hashed into 2^hash_bits columns: expected "
                     "an integer in [1, " +
                         std::to_string(data::kMaxHashBits) + "]");
  }
  if (*format == "idx") {
    if (auto v = m->String("labels")) ds.labels_path = *v;
    if (!m->Has("labels")) m->ReportMissing("labels", "expected the idx1 labels file");
  }
  return ds;
}

void ReadData(SpecMap* top, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map("data", {"train", "test", "validation"});
  if (!m) return;
  if (!m->Has("train")) {
    m->ReportMissing("train", "expected a map with keys path, format, partitions, ...");
  } else if (auto ds = ReadDataset(&*m, "train", /*is_train=*/true)) {
    spec->train = std::move(*ds);
  }
  if (m->Has("test")) spec->test = ReadDataset(&*m, "test", /*is_train=*/false);
  if (m->Has("validation")) spec->validation = ReadDataset(&*m, "validation", /*is_train=*/false);
}

// The keys that depend on model.type; they go into model_params for the model's mapper.
void ReadModelParams(SpecMap* m, const std::string& type, JobSpec* spec) {
  RejectUnless(m, "hidden", {"mlp"}, "model type", m->PathOf("type"), type);
  RejectUnless(m, "factors", {"fm"}, "model type", m->PathOf("type"), type);
  if (type == "fm") {
    // Always set, so every mapper and the fingerprint see the same k.
    const int64_t factors =
        m->Int("factors", IntRange{1, kMaxFmFactors}).value_or(models::kDefaultFmFactors);
    spec->model_params.Set("factors", std::to_string(factors));
  }
  RejectUnless(m, "classes", {"softmax", "mlp"}, "model type", m->PathOf("type"), type);
  if (type == "mlp") {
    if (auto v = m->IntList("hidden", IntRange::AtLeast(1))) {
      std::string joined;
      for (int64_t width : *v) joined += (joined.empty() ? "" : ",") + std::to_string(width);
      spec->model_params.Set("hidden", joined);
    }
    if (!m->Has("hidden")) {
      m->ReportMissing("hidden", "expected a list of layer widths like [128]");
    }
  }
  if (type == "softmax" || type == "mlp") {
    if (auto v = m->Int("classes", IntRange{2, kMaxClasses})) {
      spec->model_params.Set("classes", std::to_string(*v));
    }
  }
}

// model.plugin instead of model.type: the mapper comes from a library under `plugins`, and its
// settings from model.params, which the plugin checks itself when it is created.
void ReadModelPlugin(SpecMap* m, bool has_plugins, JobSpec* spec) {
  if (m->Has("type")) {
    m->Report("type", "give model.type or model.plugin, not both");
  }
  for (const char* k : {"hidden", "classes", "factors"}) {
    if (m->Has(k)) {
      m->Report(k,
                "only for built-in model types; with model.plugin put settings under "
                "model.params");
    }
  }
  if (auto v = m->String("plugin")) {
    spec->model_plugin = *v;
    spec->model_type = "plugin:" + *v;
    if (!has_plugins) m->Report("plugin", "needs the library that exports it under plugins:");
  }
  if (auto v = m->Settings("params")) spec->model_params = api::Hyperparameters(std::move(*v));
}

// Returns model.type when it is valid (never for a plugin model).
std::optional<std::string> ReadModel(SpecMap* top, bool has_plugins, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map("model", {"type", "hidden", "classes", "factors", "init",
                                                "init_scale", "block_size", "plugin", "params"});
  if (!m) return std::nullopt;
  std::optional<std::string> type;
  if (m->Has("plugin")) {
    ReadModelPlugin(&*m, has_plugins, spec);
  } else {
    const std::vector<std::string> types = {"linear", "logistic", "softmax", "mlp", "fm"};
    type = m->Choice("type", types);
    if (!m->Has("type")) {
      m->ReportMissing("type", "allowed: " + JoinNames(types));
    }
    if (m->Has("params")) m->Report("params", "only with model.plugin");
    if (type) {
      spec->model_type = *type;
      // An fm's factors must not start at 0 (their gradient would stay 0) nor tiny (their
      // products, and so their gradients, start at the square of the scale): libFM's 0.1, which
      // xavier over millions of features would not give.
      if (*type == "fm") {
        spec->init = InitScheme::kUniform;
        spec->init_scale = 0.1;
      }
      ReadModelParams(&*m, *type, spec);
      CheckModelSize(&*m, *type, *spec);
    }
  }
  std::optional<std::string> init = m->Choice("init", {"zeros", "uniform", "xavier", "he"});
  if (init) {
    Result<InitScheme> scheme = ParseInitScheme(*init);
    if (scheme.ok()) spec->init = *scheme;
  }
  if (!m->Has("init") || init) {
    RejectUnless(&*m, "init_scale", {"uniform"}, "init", m->PathOf("init"),
                 InitSchemeName(spec->init));
  }
  if (auto v = m->Number("init_scale", NumberRange::Positive())) spec->init_scale = *v;
  if (auto v = m->Int("block_size", IntRange{1, int64_t{1} << 30})) spec->block_size = *v;
  return type;
}

// Returns training.mode when it is valid (the default counts).
std::optional<JobSpec::Mode> ReadTraining(SpecMap* top, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map(
      "training", {"epochs", "rounds_per_epoch", "mode", "local_learning_rate", "local_batch_size",
                   "seed", "threads", "chunk_rows", "max_attempts", "staleness"});
  if (!m) return std::nullopt;
  if (auto v = m->Int("epochs", IntRange::AtLeast(1))) spec->epochs = *v;
  if (auto v = m->Int("rounds_per_epoch", IntRange::AtLeast(1))) spec->rounds_per_epoch = *v;
  std::optional<std::string> mode = m->Choice("mode", {"minibatch", "model_averaging"});
  bool mode_ok = !m->Has("mode") || mode.has_value();
  if (mode_ok) {
    std::string mode_name = mode.value_or("minibatch");
    if (mode_name == "model_averaging") spec->mode = JobSpec::Mode::kModelAveraging;
    for (const char* k : {"local_learning_rate", "local_batch_size"}) {
      RejectUnless(&*m, k, {"model_averaging"}, "mode", m->PathOf("mode"), mode_name);
    }
  }
  if (auto v = StepSize(&*m, "local_learning_rate")) {
    spec->local_learning_rate = *v;
  }
  if (auto v = m->Int("local_batch_size", IntRange::AtLeast(1))) spec->local_batch_size = *v;
  if (auto v = m->Int("seed", IntRange::AtLeast(0))) spec->seed = static_cast<uint64_t>(*v);
  if (auto v = m->Int("threads", IntRange{0, 4096})) spec->threads = static_cast<int>(*v);
  if (auto v = m->Int("chunk_rows", IntRange::AtLeast(1))) spec->chunk_rows = *v;
  if (auto v = m->Int("max_attempts", IntRange{1, 100})) spec->max_attempts = static_cast<int>(*v);
  if (auto v = m->Int("staleness", IntRange{0, JobSpec::kMaxStaleness})) spec->staleness = *v;
  if (!mode_ok) return std::nullopt;
  return spec->mode;
}

// The rule-specific keys of `update`, their rules and defaults. Defaults are written into
// update_params so that every reducer sees the same values and the fingerprint covers them.
struct RuleParam {
  const char* rule;
  const char* key;
  double fallback;
  NumberRange range;
};

constexpr RuleParam kRuleParams[] = {
    {"momentum", "momentum", 0.9, NumberRange::UnitHalfOpen()},
    {"nesterov", "momentum", 0.9, NumberRange::UnitHalfOpen()},
    {"adam", "beta1", 0.9, NumberRange::UnitHalfOpen()},
    {"adam", "beta2", 0.999, NumberRange::UnitHalfOpen()},
    {"adam", "epsilon", 1e-8, NumberRange::Positive()},
    {"adagrad", "epsilon", 1e-10, NumberRange::Positive()},
    {"adagrad", "initial_accumulator", 0.1, NumberRange::NonNegative()},
    {"ftrl", "beta", 1.0, NumberRange::Positive()},
};

void ReadRuleParams(SpecMap* m, const std::string& rule, JobSpec* spec) {
  for (const char* key : {"momentum", "beta1", "beta2", "epsilon", "initial_accumulator", "beta"}) {
    std::vector<std::string> owners;
    for (const RuleParam& p : kRuleParams) {
      if (key == std::string(p.key)) owners.push_back(p.rule);
    }
    RejectUnless(m, key, owners, "rule", m->PathOf("rule"), rule);
  }
  for (const RuleParam& p : kRuleParams) {
    if (rule != p.rule) continue;
    double v = m->Number(p.key, p.range).value_or(p.fallback);
    spec->update_params.Set(p.key, FormatNumber(v));
  }
}

void ReadSchedule(SpecMap* update, JobSpec* spec) {
  std::optional<SpecMap> m =
      update->Map("schedule", {"type", "step_epochs", "gamma", "min_learning_rate"});
  if (!m) return;
  std::optional<std::string> type = m->Choice("type", {"constant", "step", "cosine"});
  if (!m->Has("type") || type) {
    std::string name = type.value_or("constant");
    if (name == "step") spec->schedule = JobSpec::Schedule::kStep;
    if (name == "cosine") spec->schedule = JobSpec::Schedule::kCosine;
    for (const char* k : {"step_epochs", "gamma"}) {
      RejectUnless(&*m, k, {"step"}, "schedule type", m->PathOf("type"), name);
    }
    RejectUnless(&*m, "min_learning_rate", {"cosine"}, "schedule type", m->PathOf("type"), name);
  }
  if (auto v = m->Int("step_epochs", IntRange::AtLeast(1))) spec->schedule_step_epochs = *v;
  if (auto v = m->Number("gamma", NumberRange{0, true, 1, false})) spec->schedule_gamma = *v;
  if (auto v = m->Number("min_learning_rate", NumberRange::NonNegative())) {
    spec->schedule_min_lr = *v;
    if (*v > spec->learning_rate) {
      m->Report("min_learning_rate",
                "must not exceed update.learning_rate (" + FormatNumber(spec->learning_rate) + ")");
    }
  }
}

// update.plugin instead of update.rule: the reducer comes from a library under `plugins`, and
// its settings from update.params.
void ReadUpdatePlugin(SpecMap* m, bool has_plugins, JobSpec* spec) {
  if (m->Has("rule")) m->Report("rule", "give update.rule or update.plugin, not both");
  for (const char* k : {"momentum", "beta1", "beta2", "epsilon", "initial_accumulator", "beta"}) {
    if (m->Has(k)) {
      m->Report(k,
                "only for built-in rules; with update.plugin put settings under "
                "update.params");
    }
  }
  if (auto v = m->String("plugin")) {
    spec->update_plugin = *v;
    spec->update_rule = "plugin:" + *v;
    if (!has_plugins) m->Report("plugin", "needs the library that exports it under plugins:");
  }
  if (auto v = m->Settings("params")) spec->update_params = api::Hyperparameters(std::move(*v));
}

// FTRL's closed form applies L1 and L2 itself: they become the rule's parameters, and the
// engine's own step (L2 in the gradient, soft threshold after the rule) is left off.
void MoveRegularizationIntoFtrl(JobSpec* spec) {
  spec->update_params.Set("l1", FormatNumber(spec->l1));
  spec->update_params.Set("l2", FormatNumber(spec->l2));
  spec->l1 = 0;
  spec->l2 = 0;
}

void ReadUpdate(SpecMap* top, const std::optional<std::string>& model_type,
                const std::optional<JobSpec::Mode>& mode, bool has_plugins, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map(
      "update", {"rule", "learning_rate", "momentum", "beta1", "beta2", "epsilon",
                 "initial_accumulator", "beta", "l1", "l2", "schedule", "plugin", "params"});
  if (!m) return;
  if (m->Has("plugin")) {
    ReadUpdatePlugin(&*m, has_plugins, spec);
    if (auto v = StepSize(&*m, "learning_rate")) spec->learning_rate = *v;
  } else {
    if (m->Has("params")) m->Report("params", "only with update.plugin");
    std::optional<std::string> rule =
        m->Choice("rule", {"sgd", "momentum", "nesterov", "adagrad", "adam", "ftrl", "average"});
    if (rule) spec->update_rule = *rule;
    // `average` replaces the model by the average of the local models; its learning rate is the
    // step from the old model toward that average, so 1 is the natural default.
    if (spec->update_rule == "average") spec->learning_rate = 1.0;
    // FTRL's alpha: the paper's experiments and common practice use 0.05 to 0.1; 0.01 crawls.
    if (spec->update_rule == "ftrl") spec->learning_rate = 0.1;
    if (auto v = StepSize(&*m, "learning_rate")) spec->learning_rate = *v;
    if (!m->Has("rule") || rule) ReadRuleParams(&*m, spec->update_rule, spec);
    if (rule == "average" && mode && *mode != JobSpec::Mode::kModelAveraging) {
      m->Report("rule",
                "rule average needs training.mode: model_averaging; training.mode is "
                "minibatch");
    }
  }
  if (model_type) {
    RejectUnless(&*m, "l1", {"linear", "logistic", "softmax", "fm"}, "model type", "model.type",
                 *model_type);
  }
  if (auto v = m->Number("l1", NumberRange::NonNegative())) spec->l1 = *v;
  if (auto v = m->Number("l2", NumberRange::NonNegative())) spec->l2 = *v;
  if (spec->update_rule == "ftrl") MoveRegularizationIntoFtrl(spec);
  ReadSchedule(&*m, spec);
}

void ReadShuffle(SpecMap* top, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map("shuffle", {"mode", "reducers", "buffer_bytes"});
  if (!m) return;
  if (auto v = m->Choice("mode", {"hash", "sort"})) {
    spec->shuffle_mode = *v == "sort" ? JobSpec::ShuffleMode::kSort : JobSpec::ShuffleMode::kHash;
  }
  if (auto v = m->Int("reducers", IntRange{1, 65536})) spec->reducers = static_cast<int>(*v);
  if (auto v = m->Int("buffer_bytes", IntRange::AtLeast(1))) spec->shuffle_buffer_bytes = *v;
}

// combiner: {plugin: NAME, params: {...}}: an optional map-side transform from `plugins`.
void ReadCombiner(SpecMap* top, bool has_plugins, JobSpec* spec) {
  if (!top->Has("combiner")) return;
  std::optional<SpecMap> m = top->Map("combiner", {"plugin", "params"});
  if (!m) return;
  if (auto v = m->String("plugin")) {
    spec->combiner_plugin = *v;
    if (!has_plugins) m->Report("plugin", "needs the library that exports it under plugins:");
  }
  if (!m->Has("plugin")) m->ReportMissing("plugin", "expected a combiner from plugins:");
  if (auto v = m->Settings("params")) spec->combiner_params = api::Hyperparameters(std::move(*v));
}

void ReadOutput(SpecMap* top, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map("output", {"dir", "checkpoint"});
  if (!m) return;
  if (auto v = m->String("dir")) spec->output_dir = *v;
  if (!m->Has("dir")) m->ReportMissing("dir", "expected the folder for checkpoints and metrics");
  std::optional<SpecMap> c = m->Map("checkpoint", {"every_epochs", "keep"});
  if (!c) return;
  if (auto v = c->Int("every_epochs", IntRange::AtLeast(0))) spec->checkpoint_every = *v;
  if (auto v = c->Int("keep", IntRange::AtLeast(1))) spec->checkpoint_keep = *v;
}

// A batch inference job (mrtrain predict --master): data.train is scored with predict.model
// into output.dir. It trains nothing, so the training sections have no place in it.
void ReadPredict(SpecMap* top, JobSpec* spec) {
  std::optional<SpecMap> m = top->Map("predict", {"model", "max_attempts"});
  if (!m) return;
  if (auto v = m->String("model")) spec->predict_model = *v;
  if (!m->Has("model")) m->ReportMissing("model", "expected the model.mrt or checkpoint to use");
  if (auto v = m->Int("max_attempts", IntRange::AtLeast(1))) spec->max_attempts = *v;
  for (const char* k : {"model", "update", "training", "shuffle", "combiner"}) {
    if (top->Has(k)) {
      top->Report(k, "a predict job takes its model from predict.model and trains nothing");
    }
  }
}

// "job.yaml:4: YAML syntax error: ..." rather than an exception.
Result<YAML::Node> LoadYaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    return InvalidArgumentError(source + ":" + std::to_string(e.mark.line + 1) +
                                ": YAML nested too deeply (more than " + std::to_string(e.depth()) +
                                " levels); a job spec needs only a few");
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.line < 0 ? source : source + ":" + std::to_string(e.mark.line + 1);
    return InvalidArgumentError(where + ": YAML syntax error: " + e.msg);
  }
}

std::string DefaultName(const std::string& source) {
  std::string stem = std::filesystem::path(source).stem().string();
  return stem.empty() ? "job" : stem;
}

Result<JobSpec> ParseTree(const std::string& yaml_text, const std::string& source,
                          const std::vector<std::string>& overrides) {
  MRTRAIN_ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml_text, source));
  if (!root.IsMap() && !root.IsNull()) {
    return InvalidArgumentError(source + ":" + std::to_string(root.Mark().line + 1) +
                                ": a job spec is a map of sections (name, data, model, update, "
                                "training, shuffle, output, plugins, combiner)");
  }
  SpecErrors errors(source);
  ApplyOverrides(overrides, &root, &errors);
  if (!errors.empty()) return errors.ToStatus();

  JobSpec spec;
  spec.source_path = source;
  spec.name = DefaultName(source);
  SpecMap top(&errors, root, "",
              {"name", "data", "model", "update", "training", "shuffle", "output", "plugins",
               "combiner", "predict"});
  if (auto v = top.String("name")) spec.name = *v;
  if (auto v = top.StringList("plugins")) spec.plugins = std::move(*v);
  // Whether `plugins` was given at all; a malformed list has already been reported.
  const bool has_plugins = top.Has("plugins");
  ReadData(&top, &spec);
  if (top.Has("predict")) {
    ReadPredict(&top, &spec);
    ReadOutput(&top, &spec);
    if (!errors.empty()) return errors.ToStatus();
    return spec;
  }
  // Training first: the model's size check needs training.chunk_rows. Errors sort by line, so
  // the order of the readers does not show.
  std::optional<JobSpec::Mode> mode = ReadTraining(&top, &spec);
  std::optional<std::string> model_type = ReadModel(&top, has_plugins, &spec);
  if (model_type) SetLabelRules(*model_type, &spec);
  ReadUpdate(&top, model_type, mode, has_plugins, &spec);
  ReadShuffle(&top, &spec);
  ReadCombiner(&top, has_plugins, &spec);
  ReadOutput(&top, &spec);
  if (!errors.empty()) return errors.ToStatus();
  return spec;
}

}  // namespace

Result<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& source,
                             const std::vector<std::string>& overrides) {
  // yaml-cpp reports with exceptions; none may leave the library (STYLE.md section 5).
  try {
    Result<JobSpec> spec = ParseTree(yaml_text, source, overrides);
    if (spec.ok()) {
      spec->text = yaml_text;
      spec->overrides = overrides;
    }
    return spec;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.line < 0 ? source : source + ":" + std::to_string(e.mark.line + 1);
    return InvalidArgumentError(where + ": " + e.msg);
  } catch (const std::exception& e) {
    return InternalError(source + ": unexpected error while reading the job spec: " + e.what());
  }
}

Result<JobSpec> LoadJobSpec(const std::string& path, const std::vector<std::string>& overrides) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return NotFoundError("cannot open job spec '" + path + "': " + std::strerror(errno));
  }
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int read_errno = errno;
  std::fclose(f);
  if (failed) {
    return NotFoundError("cannot read job spec '" + path + "': " + std::strerror(read_errno));
  }
  return ParseJobSpec(text, path, overrides);
}

}  // namespace mrtrain::jobs
