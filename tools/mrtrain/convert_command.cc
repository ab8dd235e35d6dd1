// mrtrain convert: a job's dataset parsed once into binary shards (engine/data/FORMAT.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/duration_text.h"
#include "engine/data/shard_converter.h"
#include "jobs/spec/job_spec.h"
#include "tools/mrtrain/commands.h"

namespace mrtrain::tools {
namespace {

struct ConvertFlags {
  std::string spec_path;
  std::vector<std::string> overrides;
  std::string dataset = "train";
  std::string out_dir;
  int threads = 2;
  std::string progress = "auto";
};

// A bar redrawn in place on stderr after each partition (by default when stderr is a terminal).
void DrawProgress(const data::ConvertProgress& p, double elapsed_sec) {
  constexpr int kWidth = 30;
  const double fraction = double(p.partitions_done) / p.num_partitions;
  std::string bar(static_cast<int>(fraction * kWidth), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[Kconvert [%s] %3d%% %lld/%lld partitions, %lld rows, %.1f MB %s",
               bar.c_str(), static_cast<int>(fraction * 100),
               static_cast<long long>(p.partitions_done), static_cast<long long>(p.num_partitions),
               static_cast<long long>(p.rows), p.bytes_written / 1e6,
               FormatDuration(elapsed_sec).c_str());
  std::fflush(stderr);
}

int Convert(const ConvertFlags& flags) {
  auto spec = jobs::LoadJobSpec(flags.spec_path, flags.overrides);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 2;
  }
  const std::optional<data::DatasetSpec> source = flags.dataset == "train"  ? spec->train
                                                  : flags.dataset == "test" ? spec->test
                                                                            : spec->validation;
  if (!source) {
    std::fprintf(stderr, "mrtrain convert: %s has no data.%s\n", flags.spec_path.c_str(),
                 flags.dataset.c_str());
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  data::ConvertOptions options;
  options.threads = flags.threads;
  const bool interactive =
      flags.progress == "bar" || (flags.progress == "auto" && isatty(STDERR_FILENO));
  if (interactive) {
    options.on_progress = [&elapsed](const data::ConvertProgress& p) {
      DrawProgress(p, elapsed());
    };
  }
  auto summary = data::ConvertToShards(*source, flags.out_dir, options);
  if (interactive) std::fputs("\r\033[K", stderr);
  if (!summary.ok()) {
    std::fprintf(stderr, "mrtrain convert: data.%s: %s\n", flags.dataset.c_str(),
                 summary.status().message().c_str());
    return 1;
  }
  const data::ConvertProgress& t = summary->totals;
  std::printf(
      "converted data.%s into %s: %lld partitions, %lld rows (%lld bad records "
      "skipped), %lld bytes in %s\nread it with: {path: %s, format: shards, partitions: "
      "%lld}\n",
      flags.dataset.c_str(), flags.out_dir.c_str(), static_cast<long long>(t.num_partitions),
      static_cast<long long>(t.rows), static_cast<long long>(summary->skipped_records),
      static_cast<long long>(t.bytes_written), FormatDuration(elapsed()).c_str(),
      flags.out_dir.c_str(), static_cast<long long>(t.num_partitions));
  return 0;
}

}  // namespace

void AddConvertCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ConvertFlags>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Parse a job's dataset once into binary shards that format: shards reads");
  cmd->add_option("job", flags->spec_path, "Job spec (YAML) whose dataset to convert")->required();
  cmd->add_option("--out", flags->out_dir, "Output folder (new or empty)")->required();
  cmd->add_option("--data", flags->dataset, "Which dataset: train, test or validation")
      ->check(CLI::IsMember({"train", "test", "validation"}));
  cmd->add_option("--set", flags->overrides, "Override a spec key (repeatable)");
  cmd->add_option("--threads", flags->threads, "Partitions converted at once")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--progress", flags->progress,
                  "auto (a bar on stderr when it is a terminal), bar or none")
      ->check(CLI::IsMember({"auto", "bar", "none"}));
  cmd->callback([flags, exit_code] { *exit_code = Convert(*flags); });
}

}  // namespace mrtrain::tools
