#include "tools/bench/round_growth_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include <climits>

#include "jobs/spec/job_spec.h"
#include "runtime/local/local_job.h"
#include "tools/bench/training_timeline.h"
#include "tools/data/sparse_synthetic.h"

namespace mrtrain::bench {
namespace {

// 2 partitions x 500 rows a round: 1,000 rows of ~40 ids touch ~40,000 weights at every width.
constexpr int kPartitions = 2;
constexpr int kRowsPerTask = 500;
constexpr int kRounds = 12;

class RoundPrinter : public runtime::TrainingObserver {
 public:
  explicit RoundPrinter(int rounds) : rounds_(rounds) {}
  void OnRound(int64_t epoch, int64_t round, int64_t, int64_t, double elapsed_sec) override {
    std::printf("round %.6f\n", elapsed_sec);
    std::fflush(stdout);
    // The figure is taken: skip writing the final model (gigabytes at 2^28).
    if (round + 1 >= rounds_) std::_Exit(0);
  }

 private:
  int rounds_;
};

// Half of what the machine has free (MemAvailable), at most 16 GiB, in KiB: a width that needs
// more fails its allocation instead of pushing the machine into swap or the OOM killer.
int64_t AddressLimitKib() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") break;
    meminfo.ignore(256, '\n');
  }
  return std::min<int64_t>(std::max<int64_t>(kib / 2, 1 << 20), int64_t{16} << 20);
}

struct ChildRun {
  std::vector<double> round_ends;
  std::string last_message;  // the last other line the child printed: its error
  int exit_code = 0;         // 137: killed at the time limit
};

ChildRun RunChild(const std::string& command) {
  ChildRun run;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    run.exit_code = -1;
    run.last_message = "cannot start: " + command;
    return run;
  }
  char line[4096];
  while (std::fgets(line, sizeof(line), pipe)) {
    double seconds = 0;
    if (std::sscanf(line, "round %lf", &seconds) == 1) {
      run.round_ends.push_back(seconds);
    } else if (line[0] != '\n') {
      run.last_message = line;
      if (run.last_message.back() == '\n') run.last_message.pop_back();
    }
  }
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace

int BenchSparseRoundCost(const RoundGrowthOptions& options) {
  if (options.widths.empty()) {
    std::fprintf(stderr, "sparse_round_cost: --round-cost-widths is empty\n");
    return 1;
  }
  tools::HashedBinarySpec data;
  data.rows = int64_t{kPartitions} * kRowsPerTask * kRounds;
  data.bits = 31;  // ids of any width, hashed into each model's by data.train.hash_bits
  const std::string path = options.tmp_dir + "/round_growth.svm";
  Status written = tools::WriteHashedBinaryLibsvm(path, data);
  if (!written.ok()) {
    std::fprintf(stderr, "sparse_round_cost: %s\n", written.ToString().c_str());
    return 1;
  }
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  const int64_t limit_kib = AddressLimitKib();
  std::optional<double> base;
  for (int bits : options.widths) {
    const std::string command =
        "ulimit -v " + std::to_string(limit_kib) + " && exec timeout -s KILL " +
        std::to_string(options.timeout_sec) + " '" + std::string(self, n) + "' " +
        kRoundCostChildFlag + " " + std::to_string(bits) + " '" + path + "' '" + options.tmp_dir +
        "/round_growth_" + std::to_string(bits) + "' " + std::to_string(kRounds) + " 2>&1";
    const ChildRun run = RunChild(command);
    const std::optional<double> round = MedianRoundSeconds(run.round_ends);
    if (round && (run.exit_code == 0 || run.round_ends.size() >= 3)) {
      if (bits == options.widths[0]) base = round;
      std::printf("sparse_round_cost: 2^%d features: %.1f ms/round (median of %zu rounds)", bits,
                  *round * 1000, run.round_ends.size() - 1);
      if (base && bits != options.widths[0])
        std::printf(", ratio to 2^%d %.2f", options.widths[0], *round / *base);
      if (run.exit_code != 0) std::printf(" (then stopped at the limit)");
      std::printf("\n");
      continue;
    }
    std::string why = run.exit_code == 137
                          ? "killed at the limit of " + std::to_string(options.timeout_sec) +
                                " s (--round-cost-timeout)"
                          : "exit code " + std::to_string(run.exit_code);
    std::printf(
        "sparse_round_cost: 2^%d features: CANNOT RUN today: %s with %zu of %d rounds done, "
        "address space limited to %lld MiB (half of MemAvailable)%s%s\n",
        bits, why.c_str(), run.round_ends.size(), kRounds, static_cast<long long>(limit_kib >> 10),
        run.last_message.empty() ? "" : "; it said: ", run.last_message.c_str());
  }
  std::printf(
      "sparse_round_cost: %d rows a round (~%d ids each), local mode, adagrad, 8 reducers\n",
      kPartitions * kRowsPerTask, data.active);
  return base ? 0 : 1;
}

int RunRoundCostChild(int hash_bits, const std::string& data, const std::string& out_dir,
                      int rounds) {
  const std::string yaml =
      "data: {train: {path: " + data + ", format: libsvm, hash_bits: " + std::to_string(hash_bits) +
      ", partitions: " + std::to_string(kPartitions) +
      "}}\n"
      "model: {type: logistic, init: zeros}\n"
      "update: {rule: adagrad, learning_rate: 0.1}\n"
      // A reducer shard's run of one task is one message of at most 2^26 floats today: 8
      // shards keep a 2^28 model under it. One mapper call per task (chunk_rows below).
      "shuffle: {reducers: 8}\n"
      "training: {epochs: 1, rounds_per_epoch: " +
      std::to_string(rounds) + ", threads: 2, chunk_rows: " + std::to_string(kRowsPerTask) +
      "}\n"
      "output: {dir: " +
      out_dir + ", checkpoint: {every_epochs: 0}}\n";
  auto spec = jobs::ParseJobSpec(yaml, "round_growth.yaml");
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().ToString().c_str());
    return 1;
  }
  RoundPrinter printer(rounds);
  auto result = runtime::RunLocalJob(*spec, runtime::LocalRunOptions{}, &printer);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace mrtrain::bench
