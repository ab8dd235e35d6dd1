// JobSpec::Fingerprint(): a digest of everything that decides the trained bytes.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "engine/base/check.h"
#include "engine/base/sha256.h"
#include "engine/data/shard_source_spec.h"
#include "jobs/spec/job_spec.h"
#include "jobs/spec/yaml_reader.h"

namespace mrtrain::jobs {
namespace {

// "key=<length>:<value>\n" lines in a fixed order. The length prefix keeps a value holding a
// newline or '=' (a path, say) from ever reading as another field.
class CanonicalText {
 public:
  void Add(const std::string& key, const std::string& value) {
    text_ += key + "=" + std::to_string(value.size()) + ":" + value + "\n";
  }
  void AddInt(const std::string& key, int64_t v) { Add(key, std::to_string(v)); }
  void AddNumber(const std::string& key, double v) { Add(key, FormatNumber(v)); }
  void AddBool(const std::string& key, bool v) { Add(key, v ? "true" : "false"); }
  void AddParams(const std::string& prefix, const api::Hyperparameters& params) {
    for (const auto& [k, v] : params.values()) Add(prefix + k, v);  // std::map: sorted
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Names written here rather than taken from data::DataFormatName() and friends, so that renaming a
// display name in the data library can never change the fingerprints of existing checkpoints.
const char* FormatKey(data::DataFormat format) {
  switch (format) {
    case data::DataFormat::kLibsvm:
      return "libsvm";
    case data::DataFormat::kCsv:
      return "csv";
    case data::DataFormat::kIdx:
      return "idx";
    case data::DataFormat::kShards:
      return "shards";
    case data::DataFormat::kCriteo:
      return "criteo";
  }
  return "?";
}

const char* ScheduleKey(JobSpec::Schedule schedule) {
  switch (schedule) {
    case JobSpec::Schedule::kConstant:
      return "constant";
    case JobSpec::Schedule::kStep:
      return "step";
    case JobSpec::Schedule::kCosine:
      return "cosine";
  }
  return "?";
}

// A shard set stands for the source it was converted from: its rows are the source's, bit for
// bit, so a job on it is the same job (same model bytes, and either resumes the other's
// checkpoints). When the shards cannot be read the spec as written is used; opening the
// dataset reports the real error.
void AddDataset(const std::string& prefix, const data::DatasetSpec& ds, CanonicalText* out);

void AddShardDataset(const std::string& prefix, const data::DatasetSpec& ds, CanonicalText* out) {
  Result<data::DatasetSpec> source = data::ReadShardSourceSpec(ds);
  if (source.ok() && source->format != data::DataFormat::kShards) {
    AddDataset(prefix, *source, out);
    return;
  }
  out->Add(prefix + "path", ds.path);
  out->Add(prefix + "format", FormatKey(ds.format));
  out->AddInt(prefix + "partitions", ds.num_partitions);
}

void AddDataset(const std::string& prefix, const data::DatasetSpec& ds, CanonicalText* out) {
  if (ds.format == data::DataFormat::kShards) return AddShardDataset(prefix, ds, out);
  out->Add(prefix + "path", ds.path);
  out->Add(prefix + "format", FormatKey(ds.format));
  out->AddInt(prefix + "partitions", ds.num_partitions);
  out->Add(prefix + "on_bad_record",
           ds.on_bad_record == data::BadRecordPolicy::kSkip ? "skip" : "fail");
  out->AddBool(prefix + "header", ds.csv_header);
  out->Add(prefix + "label_column", ds.label_column);
  out->Add(prefix + "delimiter", std::string(1, ds.delimiter));
  out->AddInt(prefix + "features", ds.num_features);
  out->AddBool(prefix + "zero_based", ds.zero_based);
  // Only when set, so the fingerprints of jobs from before the key stay as they were.
  if (ds.hash_bits != 0) out->AddInt(prefix + "hash_bits", ds.hash_bits);
  out->Add(prefix + "labels", ds.labels_path);
  out->AddNumber(prefix + "scale", ds.scale);
}

void AddOptionalDataset(const std::string& prefix, const std::optional<data::DatasetSpec>& ds,
                        CanonicalText* out) {
  if (ds) {
    AddDataset(prefix, *ds, out);
  } else {
    out->Add(prefix + "absent", "true");
  }
}

// The digest of a plugin library's bytes, or "unreadable": a fingerprint is a pure function of
// what it can see, and loading the library reports the real error. Only regular files are read,
// so a path such as /dev/zero cannot hang it.
std::string FileSha256Hex(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "unreadable";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "unreadable";
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return "unreadable";
  return Sha256Hex(bytes.str());
}

}  // namespace

std::string JobSpec::Fingerprint() const {
  CanonicalText t;
  t.Add("fingerprint_version", "1");
  // Test and validation data do not move parameters, but their metrics are part of the job's
  // history, which a resumed job continues; so they are covered too.
  AddDataset("data.train.", train, &t);
  AddOptionalDataset("data.test.", test, &t);
  AddOptionalDataset("data.validation.", validation, &t);

  // Only present with plugins, so fingerprints of jobs without them stay as they were.
  for (size_t i = 0; i < plugins.size(); ++i) {
    const std::string key = "plugins." + std::to_string(i);
    // The bytes, not the path: workers load the library shipped to them from their own cache,
    // and a library moved elsewhere is still the same job.
    t.Add(key + ".sha256", FileSha256Hex(plugins[i]));
  }
  if (!model_plugin.empty()) t.Add("model.plugin", model_plugin);
  if (!update_plugin.empty()) t.Add("update.plugin", update_plugin);
  // Only present with a combiner, so other jobs' fingerprints stay as they were.
  if (!combiner_plugin.empty()) {
    t.Add("combiner.plugin", combiner_plugin);
    t.AddParams("combiner.", combiner_params);
  }

  t.Add("model.type", model_type);
  t.AddParams("model.", model_params);
  t.Add("model.init", InitSchemeName(init));
  t.AddNumber("model.init_scale", init_scale);
  t.AddInt("model.block_size", block_size);

  t.Add("update.rule", update_rule);
  t.AddNumber("update.learning_rate", learning_rate);
  t.AddParams("update.", update_params);
  t.AddNumber("update.l1", l1);
  t.AddNumber("update.l2", l2);
  t.Add("update.schedule.type", ScheduleKey(schedule));
  t.AddInt("update.schedule.step_epochs", schedule_step_epochs);
  t.AddNumber("update.schedule.gamma", schedule_gamma);
  t.AddNumber("update.schedule.min_learning_rate", schedule_min_lr);

  // Not threads: results are bit-identical whatever the thread count (DESIGN.md, determinism).
  t.AddInt("training.epochs", epochs);
  t.AddInt("training.rounds_per_epoch", rounds_per_epoch);
  t.Add("training.mode", mode == Mode::kModelAveraging ? "model_averaging" : "minibatch");
  t.AddNumber("training.local_learning_rate", local_learning_rate);
  t.AddInt("training.local_batch_size", local_batch_size);
  t.Add("training.seed", std::to_string(seed));
  t.AddInt("training.chunk_rows", chunk_rows);
  // Only when set: a spec without it keeps the fingerprint it always had (and its checkpoints).
  if (staleness != 0) t.AddInt("training.staleness", staleness);
  return Sha256Hex(t.text());
}

}  // namespace mrtrain::jobs
