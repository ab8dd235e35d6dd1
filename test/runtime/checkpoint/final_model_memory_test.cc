// Writing the final model of a ~300 MB checkpoint grows the writer's peak resident memory by far
// less than the model: the shard files are streamed, never assembled. A binary of its own, so
// that nothing else this process did sets its peak.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/peak_rss.h"
#include "engine/tensor/model_layout.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/final_model_writer.h"
#include "runtime/checkpoint/model_file_reader.h"
#include "test/runtime/checkpoint/sharded_checkpoint_maker.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;
using mrtrain::testing::TempDir;

// Their quarantine and shadow memory make a process's size say nothing about the program's own.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr int64_t kDense = 4096;             // W: [4096, 4096], 64 MiB
constexpr int64_t kRows = int64_t{1} << 20;  // stored rows of "emb" [2^30, 8]: 32 MiB
constexpr int kSlots = 2;                    // Adam's m and v: three times both
constexpr int kShards = 4;

float ValueAt(uint64_t i, int part) { return static_cast<float>((i * 7 + part * 13) % 1001); }

// 288 MiB of parameters and slots: W's 16M floats and 1M rows of 8, each three times.
Checkpoint LargeCheckpoint() {
  auto layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create(
          {TensorSpec{"W", {kDense, kDense}, TensorSpec::Role::kWeight},
           TensorSpec{"emb", {int64_t{1} << 30, 8}, TensorSpec::Role::kWeight, true}},
          1 << 16)
          .value());
  Checkpoint c;
  c.epochs_done = 1;
  c.fingerprint = "fp-large";
  c.model_type = "fm";
  c.update_rule = "adam";
  c.data_shape = {int64_t{1} << 30, 2, true};
  c.state = ModelState::Zeros(layout, kSlots);
  c.state.step = 5;
  for (size_t i = 0; i < c.state.tensors[0].size(); ++i) {
    c.state.tensors[0][i] = ValueAt(i, 0);
    for (int k = 0; k < kSlots; ++k) c.state.slots[k][0][i] = ValueAt(i, 1 + k);
  }
  StoredRows& rows = c.state.rows[1];
  rows.slots.assign(kSlots, {});
  for (int64_t r = 0; r < kRows; ++r) {
    rows.ids.push_back(r * 1023 + 5);
    for (int d = 0; d < 8; ++d) {
      rows.values.push_back(ValueAt(r * 8 + d, 0));
      for (int k = 0; k < kSlots; ++k) rows.slots[k].push_back(ValueAt(r * 8 + d, 1 + k));
    }
  }
  return c;
}

// Writes the sharded checkpoint in a child process, so this one never holds the model.
void WriteCheckpointInChild(const std::string& dir) {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    CheckpointDir checkpoints(dir, 2);
    const bool ok = mrtrain::testing::SaveSharded(&checkpoints, LargeCheckpoint(), kShards).ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("writing the final model of a 300 MB checkpoint grows peak memory by under 64 MiB",
          "[runtime]") {
  if (kSanitized) {
    WARN("skipped: sanitizers make the process's size meaningless");
    return;
  }
  TempDir dir;
  WriteCheckpointInChild(dir.File("ckpt"));
  uint64_t shard_bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.File("ckpt"))) {
    if (entry.is_regular_file()) shard_bytes += entry.file_size();
  }
  REQUIRE(shard_bytes > (280u << 20));

  ResetPeakRss();  // when the kernel refuses, the peak counts from the start: still small
  const int64_t before = PeakRssBytes();
  const Status written = WriteFinalModel(CheckpointDir(dir.File("ckpt"), 2), 1,
                                         dir.File("model.mrt"), dir.File("model.npz"));
  const int64_t grown = PeakRssBytes() - before;
  INFO(written.ToString());
  REQUIRE(written.ok());
  INFO("peak RSS grew by " << FormatMiB(grown) << " writing " << FormatMiB(shard_bytes));
  CHECK(grown < (int64_t{64} << 20));

  // The files hold the model: its size, and values spot-checked where they lie.
  const uint64_t mrt = std::filesystem::file_size(dir.File("model.mrt"));
  CHECK(mrt > (280u << 20));
  CHECK(std::filesystem::file_size(dir.File("model.npz")) > (90u << 20));
  Result<std::unique_ptr<ModelFileReader>> model = ModelFileReader::Open(dir.File("model.mrt"));
  REQUIRE(model.ok());
  CHECK((*model)->arrays(1).num_rows == static_cast<uint64_t>(kRows));
  std::vector<float> row(8);
  REQUIRE((*model)->FindRow(1, 777 * 1023 + 5, row.data()));
  CHECK(row[3] == ValueAt(777 * 8 + 3, 0));
  CHECK_FALSE((*model)->FindRow(1, 6, row.data()));
  float w = 0;
  REQUIRE((*model)->ReadBytes((*model)->arrays(0).data_offset + 4 * 123457, &w, 4).ok());
  CHECK(w == ValueAt(123457, 0));
}

}  // namespace
}  // namespace mrtrain::runtime
