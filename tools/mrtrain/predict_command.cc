#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "engine/data/dataset.h"
#include "engine/data/shard_source_spec.h"
#include "runtime/local/predict_job.h"
#include "tools/mrtrain/commands.h"

namespace mrtrain::tools {
namespace {

struct PredictFlags {
  runtime::PredictOptions options;
  std::string format = "auto";
  std::string on_bad_record = "fail";
  std::string delimiter = ",";
  bool partitions_given = false;
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
  auto summary = runtime::RunPredictJob(flags.options);
  if (!summary.ok()) {
    std::fprintf(stderr, "mrtrain predict: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  const std::string& written =
      flags.options.out_dir.empty() ? flags.options.out_path : flags.options.out_dir;
  std::printf("predicted %lld rows into %s", static_cast<long long>(summary->rows),
              written.c_str());
  // Accuracy means something for class predictions only (a regression's are never exactly
  // equal); a regression gets its root mean squared error.
  if (summary->rows > 0 && summary->classifier) {
    std::printf(" (accuracy against the data's labels: %.4f)",
                double(summary->correct) / summary->rows);
  } else if (summary->rows > 0) {
    std::printf(" (RMSE against the data's labels: %.4f)", summary->rmse);
  }
  if (summary->skipped_records > 0) {
    std::printf(", skipped %lld bad records", static_cast<long long>(summary->skipped_records));
  }
  std::printf("\n");
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
  cmd->add_option("--plugin", o.plugins,
                  "A plugin library (repeatable), for a model trained with model.plugin");
  cmd->callback([flags, exit_code, partitions] {
    flags->partitions_given = partitions->count() > 0;
    *exit_code = Predict(*flags);
  });
}

}  // namespace mrtrain::tools
