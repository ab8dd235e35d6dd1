// Starting one reducer shard of three of a 300 MB dense model must cost about the shard's own
// blocks, not the whole model: no process holds the whole model, fresh or resumed. Measured as
// the growth of this process's peak RSS; a binary of its own so that nothing else moves the
// peak. Skipped under sanitizers, whose allocators keep and shadow freed memory.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/peak_rss.h"
#include "engine/updaters/registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/worker/reducer_shard.h"
#include "shuffle/partition/partitioner.h"
#include "test/testing/temp_dir.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MRTRAIN_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define MRTRAIN_SANITIZED 1
#endif
#endif

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;

constexpr int kShards = 3;
constexpr int64_t kMiB = int64_t{1} << 20;

struct BigModel {
  // 75,000,100 floats: 300 MB. Softmax regression over 750,000 features and 100 classes.
  std::shared_ptr<const ModelLayout> layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create(
          {TensorSpec{"W", {750000, 100}}, TensorSpec{"b", {100}, TensorSpec::Role::kBias}},
          int64_t{1} << 16)
          .value());
  std::shared_ptr<const shuffle::Partitioner> partitioner =
      shuffle::MakePartitioner(shuffle::ShuffleMode::kHash, *layout, kShards);
  const int64_t model_bytes = layout->num_parameters() * static_cast<int64_t>(sizeof(float));

  std::unique_ptr<ReducerShard> Shard(int shard) const {
    return std::make_unique<ReducerShard>(
        shard, layout, shuffle::KeysOfShard(*partitioner, *layout, shard),
        updaters::CreateBuiltinReducer("sgd", api::Hyperparameters()).value(), 0.0f, 0.0f,
        RowInit{InitScheme::kXavier, 0, 11}, partitioner);
  }

  int64_t OwnBytes(const ReducerShard& shard) const {
    int64_t floats = 0;
    for (ParamKey key : shard.keys()) floats += layout->Range(key).length;
    return floats * static_cast<int64_t>(sizeof(float));
  }
};

bool Sanitized() {
#ifdef MRTRAIN_SANITIZED
  WARN("skipped: a sanitizer's allocator does not return freed memory, so RSS says nothing");
  return true;
#else
  return false;
#endif
}

TEST_CASE("a fresh shard host of a 300 MB model grows by its own third, not the model",
          "[runtime][memory]") {
  if (Sanitized()) return;
  const BigModel model;
  ResetPeakRss();  // when refused, the peak counts from the start: this is the first case
  const int64_t base = PeakRssBytes();
  REQUIRE(base > 0);
  int64_t own = 0;
  {
    auto shard = model.Shard(0);
    shard->Initialize();
    own = model.OwnBytes(*shard);
    // The blocks are the initial parameters, not zeros (InitializeBlocks' own test checks
    // the bits against the whole model's).
    std::vector<float> first(static_cast<size_t>(model.layout->block_size()));
    REQUIRE(shard->ReadBlock(shard->keys().front(), first.data()).ok());
    CHECK((first[0] != 0.0f || first[1] != 0.0f));
  }
  const int64_t growth = PeakRssBytes() - base;
  INFO("peak grew by " << growth / kMiB << " MiB; the shard owns " << own / kMiB << " MiB of a "
                       << model.model_bytes / kMiB << " MiB model");
  CHECK(own > model.model_bytes / 4);  // a third of the blocks, give or take the hash
  CHECK(growth >= own * 9 / 10);       // the measurement sees the shard
  CHECK(growth < model.model_bytes / 2);
}

TEST_CASE("a resumed shard host of a 300 MB model reads its own shard file only",
          "[runtime][memory]") {
  if (Sanitized()) return;
  const BigModel model;
  testing::TempDir tmp;
  CheckpointDir dir(tmp.File("checkpoints"), 1);
  CheckpointManifest manifest;
  manifest.epochs_done = 1;
  manifest.fingerprint = "big";
  manifest.model_type = "softmax";
  manifest.update_rule = "sgd";
  manifest.tensors = model.layout->specs();
  manifest.block_size = model.layout->block_size();
  for (int s = 0; s < kShards; ++s) {  // one host after the other, as their shard files
    auto shard = model.Shard(s);
    shard->Initialize();
    ShardFile file;
    file.epochs_done = 1;
    file.shard = s;
    file.num_shards = kShards;
    file.fingerprint = "big";
    file.keys = shard->StateKeys();
    file.values = shard->StateBlocks();
    Result<ShardFileInfo> info = dir.WriteShard(file);
    REQUIRE(info.ok());
    manifest.shards.push_back(*info);
  }
  REQUIRE(dir.Commit(manifest).ok());

  if (!ResetPeakRss()) {
    WARN(
        "skipped: the kernel does not reset the peak RSS (/proc/self/clear_refs), and the "
        "checkpoint's writing already set it");
    return;
  }
  const int64_t base = PeakRssBytes();
  int64_t own = 0;
  {
    auto shard = model.Shard(1);
    Result<ShardFile> file = dir.LoadShard(1, 1, *model.layout, *model.partitioner);
    REQUIRE(file.ok());
    REQUIRE(shard->Restore(*file).ok());
    own = model.OwnBytes(*shard);
  }
  const int64_t growth = PeakRssBytes() - base;
  INFO("peak grew by " << growth / kMiB << " MiB; the shard owns " << own / kMiB << " MiB of a "
                       << model.model_bytes / kMiB << " MiB model");
  // The shard's blocks and the file's values, both its own third; the whole checkpoint alone
  // would be the model.
  CHECK(growth >= own);
  CHECK(growth < model.model_bytes * 4 / 5);
}

}  // namespace
}  // namespace mrtrain::runtime
