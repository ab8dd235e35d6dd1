// Network benchmark, reported as a ratio against a floor measured in the same run:
//
//   shuffle/<shards>x<senders>: the float payload per second that map tasks push to reducer
//   shards through the real data plane (TcpTransport, HMAC handshake, PushRun encode, frame
//   CRC, PushRun decode, PushAck; tools/bench/shuffle_throughput.h), against the loopback floor:
//   raw TCP throughput between two processes on 127.0.0.1 (tools/bench/loopback_floor.h).
//
// The last line is one JSON object; its shuffle_gbps, ratio, shards and senders are those of the
// configuration with the lowest ratio (the figure a target such as "at least 0.7" is about), and
// "configs" lists every configuration.
//
// Run from the repository root: bazel run --config=opt //tools/bench:network [-- --shards 4]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/base/log.h"
#include "engine/base/malloc_tuning.h"
#include "tools/bench/loopback_floor.h"
#include "tools/bench/shuffle_throughput.h"

namespace mrtrain::bench {
namespace {

struct Flags {
  int64_t params = 50'000'000;
  int64_t block_floats = 4096;
  std::vector<int> shards = {1, 2, 3, 4};
  std::vector<int> senders = {1, 2};
  int tasks = 3;
  int warmup_tasks = 1;
  int repeats = 3;
  int64_t floor_mib = 1024;
};

struct Config {
  int shards, senders;
  double gbps, ratio;
};

std::string Join(const std::vector<double>& v) {
  std::string out;
  char buf[32];
  for (double x : v) {
    std::snprintf(buf, sizeof(buf), "%s%.2f", out.empty() ? "" : " ", x);
    out += buf;
  }
  return out;
}

void PrintJson(const Flags& flags, double floor_gbps, const std::vector<Config>& configs) {
  const Config& worst =
      *std::min_element(configs.begin(), configs.end(),
                        [](const Config& a, const Config& b) { return a.ratio < b.ratio; });
  std::string list;
  char buf[160];
  for (const Config& c : configs) {
    std::snprintf(buf, sizeof(buf),
                  "%s{\"shards\":%d,\"senders\":%d,\"shuffle_gbps\":%.3f,\"ratio\":%.3f}",
                  list.empty() ? "" : ",", c.shards, c.senders, c.gbps, c.ratio);
    list += buf;
  }
  std::printf(
      "{\"floor_gbps\":%.3f,\"shuffle_gbps\":%.3f,\"ratio\":%.3f,\"params\":%lld,\"shards\":%d,"
      "\"senders\":%d,\"tasks\":%d,\"configs\":[%s]}\n",
      floor_gbps, worst.gbps, worst.ratio, static_cast<long long>(flags.params), worst.shards,
      worst.senders, flags.tasks, list.c_str());
}

int Run(const Flags& flags) {
  LoopbackFloorOptions floor_options;
  floor_options.bytes = flags.floor_mib << 20;
  floor_options.repeats = flags.repeats;
  Result<LoopbackFloor> floor = MeasureLoopbackFloor(floor_options);
  if (!floor.ok()) {
    std::fprintf(stderr, "%s\n", floor.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "loopback_floor: %lld MiB in %lld MiB writes between 2 processes: best %.2f GB/s (%s)\n",
      static_cast<long long>(flags.floor_mib),
      static_cast<long long>(floor_options.write_bytes >> 20), floor->best(),
      Join(floor->gbps).c_str());

  std::vector<Config> configs;
  for (int senders : flags.senders) {
    for (int shards : flags.shards) {
      ShuffleOptions options;
      options.params = flags.params;
      options.block_floats = flags.block_floats;
      options.shards = shards;
      options.senders = senders;
      options.tasks = flags.tasks;
      options.warmup_tasks = flags.warmup_tasks;
      Result<ShuffleThroughput> shuffle = MeasureShuffle(options);
      if (!shuffle.ok()) {
        std::fprintf(stderr, "shuffle/%dx%d: %s\n", shards, senders,
                     shuffle.status().ToString().c_str());
        return 1;
      }
      configs.push_back({shards, senders, shuffle->gbps(), shuffle->gbps() / floor->best()});
      std::printf(
          "shuffle/%dx%d: %lld params x %d tasks per sender, %d shards, %d senders: %.2f GB/s "
          "(waves %s), ratio %.2f\n",
          shards, senders, static_cast<long long>(flags.params), flags.tasks, shards, senders,
          shuffle->gbps(), Join(shuffle->wave_gbps).c_str(), configs.back().ratio);
      std::fflush(stdout);
    }
  }
  PrintJson(flags, floor->best(), configs);
  return 0;
}

}  // namespace
}  // namespace mrtrain::bench

int main(int argc, char** argv) {
  // As the worker does: a run's buffers are freed and allocated again every task.
  mrtrain::KeepFreedMemoryInProcess();
  CLI::App app{"mrtrain network benchmark: shuffle throughput against raw loopback TCP"};
  mrtrain::bench::Flags flags;
  app.add_option("--params", flags.params, "Model parameters (floats) each map task pushes")
      ->check(CLI::PositiveNumber);
  app.add_option("--block", flags.block_floats, "Floats per ParamKey block")
      ->check(CLI::PositiveNumber);
  app.add_option("--shards", flags.shards, "Reducer shard counts to measure")
      ->check(CLI::PositiveNumber);
  app.add_option("--senders", flags.senders, "Concurrent map tasks to measure")
      ->check(CLI::PositiveNumber);
  app.add_option("--tasks", flags.tasks, "Map tasks per sender per measurement")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-tasks", flags.warmup_tasks,
                 "Untimed map tasks per sender before the timed ones")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", flags.repeats, "Loopback floor measurements (best reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--floor-mib", flags.floor_mib, "MiB sent per loopback floor measurement")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  mrtrain::SetLogLevel("warn");
  return mrtrain::bench::Run(flags);
}
