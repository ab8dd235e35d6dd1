// Benchmark: time to a ready epoch from shards against from the text they were converted from,
// as a ratio measured in one run.
//
// A synthetic sparse libsvm file (the shape of the example: 2^20 features, about 40 per
// row) is written once, converted with `mrtrain convert`'s library, and then each side loads
// every partition the way a job does before its first round (Dataset::Open, then LoadPartition
// on a pool of threads). Each side runs --repeats times with the page cache warm; the medians
// are compared. Also reports the conversion's own time.
//
// Run from the repository root: bazel run --config=opt //tools/bench:convert [-- --rows 1000000]
//
// Measured on the 2-core build machine, 2026-12-03, --rows 1000000 (515 MB of text, 332 MB of
// shards), 8 partitions, 2 threads: text 1.914 s, shards 0.239 s, ratio 8.0x; convert 2.4 s.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/base/thread_pool.h"
#include "engine/data/dataset.h"
#include "engine/data/shard_converter.h"

namespace mrtrain::bench {
namespace {

struct Flags {
  int64_t rows = 300000;
  int64_t features = int64_t{1} << 20;
  int nnz = 40;
  int64_t partitions = 8;
  int threads = 2;
  int repeats = 3;
  std::string dir;
};

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Rows of `nnz` distinct increasing indices in [1, features] with values of a few digits.
bool WriteSparseLibsvm(const std::string& path, const Flags& f) {
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (out == nullptr) return false;
  std::mt19937_64 rng(42);
  std::vector<int64_t> idx(f.nnz);
  std::string line;
  for (int64_t r = 0; r < f.rows; ++r) {
    for (int64_t& i : idx) i = 1 + static_cast<int64_t>(rng() % f.features);
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    line = (rng() & 1) ? "1" : "-1";
    for (int64_t i : idx) {
      char pair[48];
      std::snprintf(pair, sizeof(pair), " %lld:%.4g", static_cast<long long>(i),
                    static_cast<double>(rng() % 100000) / 1000.0);
      line += pair;
    }
    line += '\n';
    idx.resize(f.nnz);
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) return false;
  }
  return std::fclose(out) == 0;
}

// Opens the dataset and loads every partition on `threads` threads: a job's work before its
// first round. Returns wall seconds, or a negative number on an error (printed).
double ReadyEpoch(const data::DatasetSpec& spec, ThreadPool& pool, int64_t* rows) {
  const auto start = std::chrono::steady_clock::now();
  auto dataset = data::Dataset::Open(spec);
  if (!dataset.ok()) {
    std::fprintf(stderr, "%s\n", dataset.status().ToString().c_str());
    return -1;
  }
  std::vector<data::PartitionData> parts(spec.num_partitions);
  std::vector<Status> errors(spec.num_partitions);
  pool.ParallelFor(spec.num_partitions, [&](int64_t p) {
    auto part = (*dataset)->LoadPartition(p);
    if (part.ok()) {
      parts[p] = std::move(*part);
    } else {
      errors[p] = part.status();
    }
  });
  const double seconds = Seconds(start);
  *rows = 0;
  for (int64_t p = 0; p < spec.num_partitions; ++p) {
    if (!errors[p].ok()) {
      std::fprintf(stderr, "%s\n", errors[p].ToString().c_str());
      return -1;
    }
    *rows += parts[p].num_rows;
  }
  return seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(const Flags& f) {
  namespace fs = std::filesystem;
  const std::string dir =
      f.dir.empty()
          ? (fs::temp_directory_path() / ("mrtrain-convert-bench-" + std::to_string(::getpid())))
                .string()
          : f.dir;
  fs::create_directories(dir);
  data::DatasetSpec text;
  text.path = dir + "/train.svm";
  text.format = data::DataFormat::kLibsvm;
  text.num_partitions = f.partitions;
  text.num_features = f.features;
  if (!WriteSparseLibsvm(text.path, f)) {
    std::fprintf(stderr, "cannot write %s\n", text.path.c_str());
    return 1;
  }
  auto convert_start = std::chrono::steady_clock::now();
  data::ConvertOptions options;
  options.threads = f.threads;
  auto summary = data::ConvertToShards(text, dir + "/shards", options);
  if (!summary.ok()) {
    std::fprintf(stderr, "%s\n", summary.status().ToString().c_str());
    return 1;
  }
  const double convert_sec = Seconds(convert_start);
  data::DatasetSpec shards = text;
  shards.path = dir + "/shards";
  shards.format = data::DataFormat::kShards;
  shards.num_features = 0;

  ThreadPool pool(f.threads);
  std::vector<double> from_text, from_shards;
  int64_t text_rows = 0, shard_rows = 0;
  for (int i = 0; i < f.repeats; ++i) {
    from_text.push_back(ReadyEpoch(text, pool, &text_rows));
    from_shards.push_back(ReadyEpoch(shards, pool, &shard_rows));
    if (from_text.back() < 0 || from_shards.back() < 0) return 1;
  }
  const double t = Median(from_text), s = Median(from_shards);
  std::printf("convert: %lld rows, %lld features, ~%d per row, %lld partitions, %d threads\n",
              static_cast<long long>(f.rows), static_cast<long long>(f.features), f.nnz,
              static_cast<long long>(f.partitions), f.threads);
  std::printf("  text   %.1f MB, shards %.1f MB; convert took %.3f s\n",
              fs::file_size(text.path) / 1e6, summary->totals.bytes_written / 1e6, convert_sec);
  std::printf("  ready epoch from text   %.3f s (median of %d)\n", t, f.repeats);
  std::printf("  ready epoch from shards %.3f s (median of %d)\n", s, f.repeats);
  std::printf("  ratio text/shards %.2fx%s\n", t / s,
              text_rows == shard_rows ? "" : "  (ROW COUNTS DIFFER)");
  if (f.dir.empty()) fs::remove_all(dir);
  return text_rows == shard_rows ? 0 : 1;
}

}  // namespace
}  // namespace mrtrain::bench

int main(int argc, char** argv) {
  mrtrain::bench::Flags f;
  CLI::App app{"Time to a ready epoch from shards vs from libsvm text"};
  app.add_option("--rows", f.rows, "Rows of synthetic data");
  app.add_option("--features", f.features, "Feature count");
  app.add_option("--nnz", f.nnz, "Features per row (before duplicates are dropped)");
  app.add_option("--partitions", f.partitions, "Partitions");
  app.add_option("--threads", f.threads, "Loader threads (and convert threads)");
  app.add_option("--repeats", f.repeats, "Runs of each side; medians compared")
      ->check(CLI::Range(1, 100));
  app.add_option("--dir", f.dir, "Working folder (kept); default: a temporary one, removed");
  CLI11_PARSE(app, argc, argv);
  return mrtrain::bench::Run(f);
}
