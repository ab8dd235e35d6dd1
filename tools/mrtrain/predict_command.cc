#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/data/dataset.h"
#include "engine/data/shard_source_spec.h"
#include "jobs/spec/job_spec.h"
#include "runtime/job/shipped_job.h"
#include "runtime/local/predict_job.h"
#include "runtime/master/training_loop.h"
#include "tools/mrtrain/cluster_flags.h"
#include "tools/mrtrain/commands.h"
#include "tools/mrtrain/submit_client.h"

namespace mrtrain::tools {
namespace {

struct PredictFlags {
  runtime::PredictOptions options;
  std::string format = "auto";
  std::string on_bad_record = "fail";
  std::string delimiter = ",";
  bool partitions_given = false;
  std::string master;  // set: run on the cluster of this master
  ClusterFlags cluster;
};

// "auto": a folder of shards (part-00000.mrs) is shards, .csv(.gz) is csv, a name with "idx" is
// idx, anything else libsvm.
std::string GuessFormat(const std::string& path) {
  auto ends = [&](const std::string& s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  std::error_code ec;
  if (std::filesystem::exists(path + "/part-00000.mrs", ec) || ends(".mrs")) return "shards";
  if (ends(".csv") || ends(".csv.gz")) return "csv";
  if (path.find("idx") != std::string::npos) return "idx";
  return "libsvm";
}

std::string Absolute(const std::string& path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}

// A YAML scalar for `s`: JSON's double-quoted strings are YAML's too.
std::string Quoted(const std::string& s) { return nlohmann::json(s).dump(); }

// The predict job spec (jobs/spec/SCHEMA.md, `predict`) that the flags describe, with every path
// absolute so each node reads the same files.
std::string PredictSpecYaml(const PredictFlags& flags) {
  const data::DatasetSpec& d = flags.options.data;
  std::string train = "{path: " + Quoted(Absolute(d.path)) +
                      ", format: " + data::DataFormatName(d.format) +
                      ", partitions: " + std::to_string(d.num_partitions) +
                      ", on_bad_record: " + flags.on_bad_record;
  if (d.csv_header) train += ", header: true";
  if (d.label_column != "0") train += ", label_column: " + Quoted(d.label_column);
  if (d.delimiter != ',') train += ", delimiter: " + Quoted(std::string(1, d.delimiter));
  if (d.num_features > 0) train += ", features: " + std::to_string(d.num_features);
  if (d.zero_based) train += ", zero_based: true";
  if (d.hash_bits > 0) train += ", hash_bits: " + std::to_string(d.hash_bits);
  if (!d.labels_path.empty()) train += ", labels: " + Quoted(Absolute(d.labels_path));
  if (d.scale != 0) train += ", scale: " + nlohmann::json(d.scale).dump();
  if (d.max_decoded_mb != data::kDefaultMaxDecodedMb) {
    train += ", max_decoded_mb: " + std::to_string(d.max_decoded_mb);
  }
  std::string yaml = "name: predict\ndata:\n  train: " + train + "}\n";
  yaml += "predict: {model: " + Quoted(Absolute(flags.options.model_path)) + "}\n";
  yaml += "output: {dir: " + Quoted(Absolute(flags.options.out_dir)) + "}\n";
  if (!flags.options.plugins.empty()) {
    yaml += "plugins: [";
    for (size_t i = 0; i < flags.options.plugins.size(); ++i) {
      yaml += (i ? ", " : "") + Quoted(Absolute(flags.options.plugins[i]));
    }
    yaml += "]\n";
  }
  return yaml;
}

// --master: the job runs on the cluster, which writes --out-dir's parts and manifest.
int PredictOnCluster(const PredictFlags& flags) {
  if (flags.options.out_dir.empty()) {
    std::fprintf(stderr,
                 "mrtrain predict: --master writes one part per partition: give --out-dir "
                 "DIR instead of --out\n");
    return 2;
  }
  auto master = MasterAddress(flags.master);
  auto spec = jobs::ParseJobSpec(PredictSpecYaml(flags), "mrtrain predict", {});
  if (!master.ok() || !spec.ok()) {
    std::fprintf(stderr, "mrtrain predict: %s\n",
                 (master.ok() ? spec.status() : master.status()).message().c_str());
    return 2;
  }
  auto job = runtime::PackJob(*spec, std::filesystem::current_path().string(), false);
  if (!job.ok()) {
    std::fprintf(stderr, "mrtrain predict: %s\n", job.status().message().c_str());
    return 2;
  }
  auto transport = MakeClusterTransport(flags.cluster);
  if (!transport.ok()) {
    std::fprintf(stderr, "mrtrain predict: %s\n", transport.status().message().c_str());
    return 2;
  }
  ScopedSignalForwarding signals;
  runtime::TrainingObserver quiet;
  JobOutcome outcome = FollowJob(**transport, *master, std::move(*job), quiet, &signals);
  (*transport)->Stop();
  std::fprintf(outcome.exit_code == 0 ? stdout : stderr, "%s\n", outcome.summary.c_str());
  return outcome.exit_code;
}

int Predict(PredictFlags& flags) {
  auto& data = flags.options.data;
  if (flags.options.out_path.empty() == flags.options.out_dir.empty()) {
    std::fprintf(stderr, "mrtrain predict: give exactly one of --out FILE and --out-dir DIR\n");
    return 2;
  }
  auto format =
      data::ParseDataFormat(flags.format == "auto" ? GuessFormat(data.path) : flags.format);
  if (!format.ok()) {
    std::fprintf(stderr, "mrtrain predict: --format: %s\n", format.status().message().c_str());
    return 2;
  }
  data.format = *format;
  if (data.format == data::DataFormat::kCriteo && data.hash_bits == 0) {
    std::fprintf(stderr,
                 "mrtrain predict: --format criteo needs --hash-bits: the data.*.hash_bits the "
                 "model was trained with\n");
    return 2;
  }
  // A shard set knows its partition count; --partitions may only repeat it.
  if (data.format == data::DataFormat::kShards && !flags.partitions_given) {
    auto source = data::ReadShardSourceSpec(data);
    if (source.ok()) data.num_partitions = source->num_partitions;
  }
  data.on_bad_record =
      flags.on_bad_record == "skip" ? data::BadRecordPolicy::kSkip : data::BadRecordPolicy::kFail;
  if (flags.delimiter.size() != 1) {
    std::fprintf(stderr, "mrtrain predict: --delimiter must be one character\n");
    return 2;
  }
  data.delimiter = flags.delimiter[0];
  if (!flags.master.empty()) return PredictOnCluster(flags);
  auto summary = runtime::RunPredictJob(flags.options);
  if (!summary.ok()) {
    std::fprintf(stderr, "mrtrain predict: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  runtime::PredictTotals totals;
  totals.out_dir = flags.options.out_dir.empty() ? flags.options.out_path : flags.options.out_dir;
  totals.rows = summary->rows;
  totals.correct = summary->correct;
  totals.classifier = summary->classifier;
  totals.rmse = summary->rmse;
  totals.skipped_records = summary->skipped_records;
  std::printf("%s\n", runtime::DescribePredicted(totals).c_str());
  return 0;
}

}  // namespace

void AddPredictCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<PredictFlags>();
  auto& o = flags->options;
  CLI::App* cmd = app.add_subcommand("predict", "Batch inference with a trained model (map-only)");
  cmd->add_option("--model", o.model_path, "model.mrt or a checkpoint")->required();
  cmd->add_option("--data", o.data.path, "Input: a file, glob or folder")->required();
  cmd->add_option("--out", o.out_path, "Output CSV: row,label,prediction,score_0,...");
  cmd->add_option("--out-dir", o.out_dir,
                  "Instead of --out: a folder of part-NNNNN.csv (one per partition, rows "
                  "numbered as in --out's file) and manifest.json, written last");
  cmd->add_option("--format", flags->format, "auto, csv, libsvm, idx, shards or criteo")
      ->check(CLI::IsMember({"auto", "csv", "libsvm", "idx", "shards", "criteo"}));
  cmd->add_option("--labels", o.data.labels_path, "idx: the labels file");
  CLI::Option* partitions = cmd->add_option("--partitions", o.data.num_partitions,
                                            "How many partitions to cut the data into (shards: "
                                            "as converted)");
  cmd->add_flag("--header", o.data.csv_header, "csv: the first line is a header");
  cmd->add_option("--label-column", o.data.label_column, "csv: label column name or index");
  cmd->add_option("--delimiter", flags->delimiter, "csv: field delimiter");
  cmd->add_option("--features", o.data.num_features, "libsvm: the feature count");
  cmd->add_flag("--zero-based", o.data.zero_based, "libsvm: indices start at 0");
  cmd->add_option("--hash-bits", o.data.hash_bits,
                  "libsvm, criteo: hash features into 2^N columns, as the model was trained");
  cmd->add_option("--scale", o.data.scale, "Multiply every feature value by this");
  cmd->add_option("--max-decoded-mb", o.data.max_decoded_mb,
                  "Memory budget of one partition once decoded, in MiB (as data.*.max_decoded_mb)")
      ->check(CLI::Range(int64_t{1}, data::kMaxDecodedMbLimit));
  cmd->add_option("--on-bad-record", flags->on_bad_record, "fail or skip")
      ->check(CLI::IsMember({"fail", "skip"}));
  cmd->add_option("--threads", o.threads, "Threads (0: all cores)");
  cmd->add_option("--master", flags->master,
                  "Run on the cluster of the master at HOST:PORT (needs --out-dir; every worker "
                  "reads --model and --data under the same paths)");
  AddClusterFlags(cmd, &flags->cluster);
  cmd->add_option("--plugin", o.plugins,
                  "A plugin library (repeatable), for a model trained with model.plugin");
  cmd->callback([flags, exit_code, partitions] {
    flags->partitions_given = partitions->count() > 0;
    *exit_code = Predict(*flags);
  });
}

}  // namespace mrtrain::tools
