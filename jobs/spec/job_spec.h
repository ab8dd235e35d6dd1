#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/hyperparameters.h"
#include "engine/base/status.h"
#include "engine/data/dataset.h"
#include "engine/tensor/model_state.h"

namespace mrtrain::jobs {

// A job spec, parsed and validated. The schema (every key, its type, default and meaning) is
// documented in jobs/spec/SCHEMA.md; this struct mirrors it.
struct JobSpec {
  std::string name;         // `name`, default: the spec file's stem
  std::string source_path;  // the file it came from ("<string>" when parsed from text)
  // The text and overrides it was parsed from: what the master ships to workers, which parse it
  // themselves so every process holds the same spec.
  std::string text;
  std::vector<std::string> overrides;

  // plugins: shared libraries offering mappers and reducers (engine/api/plugin.h), in lookup
  // order, as written (relative paths are relative to the working directory).
  std::vector<std::string> plugins;
  // When `plugins` point at checked copies of shipped libraries (runtime/job/shipped_job.h):
  // the paths as the spec wrote them, which messages use. Empty otherwise.
  std::vector<std::string> plugin_names;

  // data:
  data::DatasetSpec train;                      // data.train (required)
  std::optional<data::DatasetSpec> test;        // data.test
  std::optional<data::DatasetSpec> validation;  // data.validation

  // model:
  std::string model_type;                 // model.type: linear | logistic | softmax | mlp;
                                          // "plugin:NAME" for a plugin model
  std::string model_plugin;               // model.plugin: a mapper from `plugins`, or empty
  api::Hyperparameters model_params;      // model keys other than type/init/init_scale/block_size,
                                          // e.g. hidden: "128,64", classes: "10"; for a plugin,
                                          // model.params
  InitScheme init = InitScheme::kXavier;  // model.init
  double init_scale = 0.01;               // model.init_scale (uniform only)
  int64_t block_size = 16384;             // model.block_size, floats per ParamKey block

  // update:
  std::string update_rule = "sgd";     // update.rule: sgd | momentum | nesterov | adagrad | adam |
                                       // ftrl | average; "plugin:NAME" for a plugin rule
  std::string update_plugin;           // update.plugin: a reducer from `plugins`, or empty
  double learning_rate = 0.01;         // update.learning_rate (FTRL's alpha)
  api::Hyperparameters update_params;  // rule-specific keys: momentum, beta1, beta2, epsilon,
                                       // initial_accumulator, beta; for ftrl also l1 and l2;
                                       // for a plugin, update.params
  // The engine's L1 and L2 around the rule (update.l1, update.l2; l1 for linear, logistic and
  // softmax models only). 0 for rule ftrl, which applies them itself from update_params.
  double l1 = 0;
  double l2 = 0;

  enum class Schedule { kConstant, kStep, kCosine };
  Schedule schedule = Schedule::kConstant;  // update.schedule.type
  int64_t schedule_step_epochs = 1;         // update.schedule.step_epochs (step)
  double schedule_gamma = 0.1;              // update.schedule.gamma (step)
  double schedule_min_lr = 0;               // update.schedule.min_learning_rate (cosine)

  // training:
  int64_t epochs = 1;            // training.epochs
  int64_t rounds_per_epoch = 1;  // training.rounds_per_epoch
  enum class Mode { kMinibatch, kModelAveraging };
  Mode mode = Mode::kMinibatch;      // training.mode: minibatch | model_averaging
  double local_learning_rate = 0.1;  // training.local_learning_rate (model_averaging)
  int64_t local_batch_size = 32;     // training.local_batch_size (model_averaging)
  uint64_t seed = 1;                 // training.seed
  int threads = 0;                   // training.threads; 0 = the number of cores
  int64_t chunk_rows = 256;          // training.chunk_rows: rows per mapper call
  int max_attempts = 4;              // training.max_attempts: tries per task before the job fails
  // training.staleness: how many updates older than the latest a round's map tasks may read
  // (MapReadsAfter); 0 = every round reads the parameters of the round before.
  int64_t staleness = 0;
  // Each in-flight version is kept by every reducer shard (a copy of its parameters).
  static constexpr int64_t kMaxStaleness = 16;

  // shuffle:
  enum class ShuffleMode { kHash, kSort };
  ShuffleMode shuffle_mode = ShuffleMode::kHash;  // shuffle.mode
  int reducers = 1;                               // shuffle.reducers
  // combiner.plugin: a map-side transform of each task's summed blocks (engine/api/combiner.h),
  // or empty for none; combiner.params its settings.
  std::string combiner_plugin;
  api::Hyperparameters combiner_params;
  int64_t shuffle_buffer_bytes = 256LL << 20;  // shuffle.buffer_bytes per map task

  // output:
  std::string output_dir;  // output.dir (required); a predict job's part files
  // predict.model: set for a batch inference job (mrtrain predict --master), which scores
  // data.train with this model and has no model, update, training, shuffle or combiner section.
  std::string predict_model;
  int64_t checkpoint_every = 1;  // output.checkpoint.every_epochs; 0 disables
  int64_t checkpoint_keep = 3;   // output.checkpoint.keep

  // A digest (hex SHA-256) of everything that decides the trained bytes: data, model, update,
  // training (except threads) and seed. Shuffle mode, reducer count, thread count and output
  // settings are left out because they do not change the result. With plugins, it also covers
  // the SHA-256 of each library's bytes as read now ("unreadable" when it cannot be read), so a
  // rebuilt plugin counts as a different job. Used to refuse resuming a checkpoint with a
  // different spec. A shard set (format: shards) counts as the source spec its shards record,
  // read from its first file: the same rows make the same job.
  std::string Fingerprint() const;

  // The update count whose parameters the map tasks of the round with update `step` (1-based)
  // and index `round` in its epoch read: max(step - 1 - staleness, E), E the step count at the
  // epoch's start (step - 1 - round). Staleness never reaches across an epoch's start, so the
  // epoch's evaluation and checkpoint see every update of the epoch applied, and a checkpoint
  // (taken at epoch ends) holds all a resumed run needs. The master and the workers each work
  // it out from the spec they share, so the messages carry no version of their own.
  int64_t MapReadsAfter(int64_t step, int64_t round) const {
    return step - 1 - (round < staleness ? round : staleness);
  }
};

// Parses a spec from YAML text. `source` names it in errors ("job.yaml"). Each override is
// "key.path=value" (value parsed as YAML) and is applied before validation, as if written in
// the file. Errors name the source, the line, the key path and what is allowed:
//   job.yaml:7: update.lerning_rate: unknown key; allowed: rule, learning_rate, ...
// Every error found is reported in one kInvalidArgument status, one a line. Throws nothing.
Result<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& source,
                             const std::vector<std::string>& overrides = {});

// Reads and parses a spec file. kNotFound when it cannot be read.
Result<JobSpec> LoadJobSpec(const std::string& path,
                            const std::vector<std::string>& overrides = {});

}  // namespace mrtrain::jobs
