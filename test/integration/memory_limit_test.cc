// Data larger than memory: a worker whose processes a memory cgroup holds to a third of the
// job's decoded data streams its partitions from disk every epoch and trains to the bytes of
// the in-memory run. Needs root and the cgroup v1 memory controller; without them it prints why
// it skipped and passes.
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test/integration/cluster_harness.h"
#include "test/testing/temp_dir.h"

namespace mrtrain {
namespace {

using testing::Cluster;
using testing::kSanitized;
using testing::ModelBytes;
using testing::Mrtrain;
using testing::Output;
using testing::TempDir;

constexpr int64_t kLimitBytes = 64ll << 20;
constexpr int kRows = 64 * 1024;
constexpr int kSide = 28;

// A memory cgroup (v1) of its own, removed with the object; empty when it cannot be made.
class MemoryCgroup {
 public:
  explicit MemoryCgroup(int64_t limit_bytes) {
    const std::string path = "/sys/fs/cgroup/memory/mrtrain-test-" + std::to_string(getpid());
    std::error_code ec;
    if (!std::filesystem::create_directory(path, ec) || ec) return;
    path_ = path;
    if (!Write("memory.limit_in_bytes", std::to_string(limit_bytes))) path_.clear();
  }
  ~MemoryCgroup() {
    if (path_.empty()) return;
    // Its processes are gone by now (the cluster is destroyed first); rmdir needs it empty.
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  bool Add(pid_t pid) { return Write("cgroup.procs", std::to_string(pid)); }
  int64_t Read(const std::string& file) const {
    std::ifstream in(path_ + "/" + file);
    int64_t value = -1;
    in >> value;
    return value;
  }

 private:
  bool Write(const std::string& file, const std::string& value) {
    std::ofstream out(path_ + "/" + file);
    out << value;
    out.flush();
    return static_cast<bool>(out);
  }
  std::string path_;
};

void PutBigEndian32(std::ofstream& out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                         static_cast<char>(v >> 8), static_cast<char>(v)};
  out.write(bytes, 4);
}

// kRows 28x28 unsigned-byte images with labels 0-9: class c lights a band of rows of its own,
// on noise, so a softmax learns it. Deterministic.
void WriteIdx(const std::string& images, const std::string& labels) {
  std::ofstream img(images, std::ios::binary);
  std::ofstream lab(labels, std::ios::binary);
  PutBigEndian32(img, 0x00000803);
  PutBigEndian32(img, kRows);
  PutBigEndian32(img, kSide);
  PutBigEndian32(img, kSide);
  PutBigEndian32(lab, 0x00000801);
  PutBigEndian32(lab, kRows);
  uint64_t state = 12345;
  std::vector<char> pixels(kSide * kSide);
  for (int r = 0; r < kRows; ++r) {
    const int label = r % 10;
    for (int p = 0; p < kSide * kSide; ++p) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const int noise = static_cast<int>(state >> 58);  // 0-63
      const bool band = p / kSide >= label * 2 + 4 && p / kSide < label * 2 + 6;
      pixels[p] = static_cast<char>(band ? 160 + noise : noise);
    }
    img.write(pixels.data(), static_cast<std::streamsize>(pixels.size()));
    lab.put(static_cast<char>(label));
  }
}

TEST_CASE("a worker held to a third of the data's memory trains to the in-memory model's bytes",
          "[integration]") {
  if (kSanitized) {
    WARN("skipped: a sanitizer's shadow memory does not fit the cgroup's limit");
    return;
  }
  MemoryCgroup cgroup(kLimitBytes);
  if (!cgroup.ok()) {
    WARN(
        "skipped: cannot create a memory cgroup under /sys/fs/cgroup/memory (needs root and "
        "cgroup v1)");
    return;
  }
  TempDir dir;
  WriteIdx(dir.File("images.idx"), dir.File("labels.idx"));
  const int64_t decoded_bytes = int64_t{kRows} * kSide * kSide * 4;
  REQUIRE(decoded_bytes >= 3 * kLimitBytes);
  const std::string spec =
      dir.Write("big.yaml", "data:\n  train: {path: " + dir.File("images.idx") +
                                ", labels: " + dir.File("labels.idx") +
                                ", format: idx, partitions: 32, cache: disk}\n"
                                "model: {type: softmax}\n"
                                "update: {rule: sgd, learning_rate: 0.1}\n"
                                "training: {epochs: 2, rounds_per_epoch: 4, seed: 3}\n"
                                "output: {dir: " +
                                dir.File("limited") + "}\n");
  // The reference: local mode with every partition in memory.
  Output local = Mrtrain("run " + spec +
                         " --set data.train.cache=memory --set output.dir=" + dir.File("memory"));
  INFO(local.text);
  REQUIRE(local.exit_code == 0);

  {
    Cluster cluster(dir);
    const pid_t worker = cluster.AddWorkers(1, {"--memory-budget-mb", "16"}).at(0);
    REQUIRE(cgroup.Add(worker));
    Output out = cluster.Submit(spec);
    INFO(out.text);
    REQUIRE(out.exit_code == 0);
    INFO("cgroup peak " << cgroup.Read("memory.max_usage_in_bytes") << " bytes, limit "
                        << kLimitBytes << ", data " << decoded_bytes << " bytes decoded");
    // The worker's memory was charged to the cgroup (it holds at least its budget of rows),
    // and stayed under the limit.
    CHECK(cgroup.Read("memory.max_usage_in_bytes") > (16ll << 20));
    CHECK(cgroup.Read("memory.max_usage_in_bytes") <= kLimitBytes);
    CHECK(ModelBytes(dir, "limited") == ModelBytes(dir, "memory"));
  }
}

}  // namespace
}  // namespace mrtrain
