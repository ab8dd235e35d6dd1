// How a reducer shard starts without the whole model: a fresh one computes only its blocks of
// the initial parameters, a resumed one reads only its own shard file of the checkpoint. Both
// must give exactly what the whole-model path (InitializeParameters, CheckpointDir::Load) gives.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/updaters/registry.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/worker/reducer_shard.h"
#include "shuffle/partition/partitioner.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;
using mrtrain::testing::TempDir;

constexpr int kShards = 3;
constexpr int64_t kRows = int64_t{1} << 20;

std::shared_ptr<const ModelLayout> Layout(int64_t block_size) {
  return std::make_shared<const ModelLayout>(
      ModelLayout::Create(
          {TensorSpec{"W", {40, 3}}, TensorSpec{"b", {3}, TensorSpec::Role::kBias},
           TensorSpec{"emb", {kRows, 2}, TensorSpec::Role::kWeight, true}, TensorSpec{"V", {7, 5}}},
          block_size)
          .value());
}

std::unique_ptr<ReducerShard> MakeShard(std::shared_ptr<const ModelLayout> layout,
                                        std::shared_ptr<const shuffle::Partitioner> partitioner,
                                        int shard, const std::string& rule, RowInit init) {
  return std::make_unique<ReducerShard>(
      shard, layout, shuffle::KeysOfShard(*partitioner, *layout, shard),
      updaters::CreateBuiltinReducer(rule, api::Hyperparameters()).value(), 0.0f, 0.0f, init,
      partitioner);
}

bool SameBytes(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp must not see the null data() of an empty vector.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("fresh shards together start as the whole model's initial parameters", "[runtime]") {
  for (int64_t block_size : {1, 16, 1000}) {
    auto layout = Layout(block_size);
    for (InitScheme scheme : {InitScheme::kUniform, InitScheme::kXavier, InitScheme::kHe}) {
      for (shuffle::ShuffleMode mode : {shuffle::ShuffleMode::kHash, shuffle::ShuffleMode::kSort}) {
        for (int shards : {1, kShards}) {
          INFO("block_size " << block_size << ", " << InitSchemeName(scheme) << ", "
                             << (mode == shuffle::ShuffleMode::kHash ? "hash" : "sort") << ", "
                             << shards << " shards");
          std::shared_ptr<const shuffle::Partitioner> partitioner =
              shuffle::MakePartitioner(mode, *layout, shards);
          const RowInit init{scheme, 0.25f, 9};
          ModelState whole = ModelState::Zeros(layout, 1);
          InitializeParameters(init.scheme, init.uniform_scale, init.seed, &whole);
          // Poisoned, so that a block no shard wrote shows.
          ModelState together = ModelState::Zeros(layout, 1);
          for (auto& tensor : together.tensors) std::fill(tensor.begin(), tensor.end(), -7.0f);
          for (auto& tensor : together.slots[0]) std::fill(tensor.begin(), tensor.end(), -7.0f);
          for (int s = 0; s < shards; ++s) {
            auto shard = MakeShard(layout, partitioner, s, "adagrad", init);
            shard->Initialize();
            shard->StoreTo(&together);
            CHECK(shard->num_rows_held() == 0);  // rows start lazily
          }
          for (size_t t = 0; t < whole.tensors.size(); ++t) {
            CHECK(SameBytes(together.tensors[t], whole.tensors[t]));
            CHECK(SameBytes(together.slots[0][t], whole.slots[0][t]));  // zeros
          }
        }
      }
    }
  }
}

// A round's gradient for every dense block and for rows `rows` of emb, each shard's part, in
// key order.
std::vector<shuffle::Run> GradientRuns(const ModelLayout& layout,
                                       const shuffle::Partitioner& partitioner,
                                       const std::vector<uint64_t>& rows, float scale) {
  std::vector<shuffle::Run> runs(kShards);
  std::vector<float> values(static_cast<size_t>(layout.max_key_length()));
  auto add = [&](ParamKey key) {
    const BlockRange r = layout.Range(key);
    for (int64_t i = 0; i < r.length; ++i) {
      values[i] = scale * static_cast<float>((key.block() * 7 + i * 3) % 11) - 2.5f;
    }
    runs[partitioner.ShardOf(key)].Append(key, values.data(), r.length);
  };
  // Ascending, as the sort shuffle needs them: emb's rows fall between W's, b's and V's blocks.
  std::vector<ParamKey> keys = layout.keys();
  for (uint64_t row : rows) keys.push_back(ParamKey(2, row));
  std::sort(keys.begin(), keys.end());
  for (ParamKey key : keys) add(key);
  return runs;
}

// What the whole-model path gave shard host: its keys' parameters and slots out of the whole
// checkpoint state, as the values of the shard's file.
std::vector<float> WholeStateBlocks(const ModelState& state, const std::vector<ParamKey>& keys) {
  std::vector<float> out;
  for (ParamKey key : keys) {
    const BlockRange r = state.layout->Range(key);
    const size_t length = static_cast<size_t>(r.length);
    if (!state.layout->is_row_sparse(r.tensor)) {
      out.insert(out.end(), state.tensors[r.tensor].begin() + r.offset,
                 state.tensors[r.tensor].begin() + r.offset + r.length);
      for (const auto& slot : state.slots) {
        out.insert(out.end(), slot[r.tensor].begin() + r.offset,
                   slot[r.tensor].begin() + r.offset + r.length);
      }
      continue;
    }
    const StoredRows& rows = state.rows[r.tensor];
    const auto it =
        std::lower_bound(rows.ids.begin(), rows.ids.end(), static_cast<int64_t>(key.block()));
    REQUIRE(it != rows.ids.end());
    REQUIRE(*it == static_cast<int64_t>(key.block()));
    const size_t at = static_cast<size_t>(it - rows.ids.begin()) * length;
    out.insert(out.end(), rows.values.begin() + at, rows.values.begin() + at + length);
    for (const auto& slot : rows.slots) {
      out.insert(out.end(), slot.begin() + at, slot.begin() + at + length);
    }
  }
  return out;
}

TEST_CASE(
    "a shard restored from its own file equals the whole-checkpoint path and trains on "
    "the same",
    "[runtime]") {
  TempDir tmp;
  CheckpointDir dir(tmp.File("checkpoints"), 2);
  auto layout = Layout(16);
  std::shared_ptr<const shuffle::Partitioner> partitioner;
  SECTION("hash") {
    partitioner = shuffle::MakePartitioner(shuffle::ShuffleMode::kHash, *layout, kShards);
  }
  SECTION("sort") {
    partitioner = shuffle::MakePartitioner(shuffle::ShuffleMode::kSort, *layout, kShards);
  }
  const RowInit init{InitScheme::kXavier, 0, 4};
  const std::string rule = "adam";  // two slots
  std::vector<std::unique_ptr<ReducerShard>> shards;
  for (int s = 0; s < kShards; ++s) {
    shards.push_back(MakeShard(layout, partitioner, s, rule, init));
    shards.back()->Initialize();
  }
  const bool sorted = partitioner->sorted();
  auto round = [&](std::vector<std::unique_ptr<ReducerShard>>& on, int64_t step,
                   const std::vector<uint64_t>& rows) {
    std::vector<shuffle::Run> runs = GradientRuns(*layout, *partitioner, rows, 0.5f * step);
    for (int s = 0; s < kShards; ++s) {
      REQUIRE(
          on[s]
              ->Reduce({&runs[s]}, {shuffle::TreeNode{0, 1}}, RoundUpdate{step, 0.05, 10.0, sorted})
              .ok());
    }
  };
  // Rows on every shard, by hash or by range of the id.
  const std::vector<uint64_t> rows = {5, 17, 300000, 400001, 700000, kRows - 1};
  round(shards, 1, rows);
  round(shards, 2, {17, 900000});

  // Each host writes its shard file and the master commits the manifest, as after an epoch.
  CheckpointManifest manifest;
  manifest.epochs_done = 1;
  manifest.step = 2;
  manifest.fingerprint = "job";
  manifest.model_type = "test";
  manifest.update_rule = rule;
  manifest.tensors = layout->specs();
  manifest.block_size = layout->block_size();
  manifest.num_slots = 2;
  for (int s = 0; s < kShards; ++s) {
    ShardFile file;
    file.epochs_done = 1;
    file.step = 2;
    file.shard = s;
    file.num_shards = kShards;
    file.fingerprint = "job";
    file.num_slots = shards[s]->num_slots();
    file.keys = shards[s]->StateKeys();
    file.values = shards[s]->StateBlocks();
    Result<ShardFileInfo> info = dir.WriteShard(file);
    REQUIRE(info.ok());
    manifest.shards.push_back(*info);
  }
  REQUIRE(dir.Commit(manifest).ok());

  // The whole-model path: the assembled checkpoint, each shard's blocks taken out of it.
  Result<Checkpoint> whole = dir.Load(1);
  REQUIRE(whole.ok());
  // Restored elsewhere (another placement): each shard from its own file.
  std::vector<std::unique_ptr<ReducerShard>> restored;
  for (int s = kShards - 1; s >= 0; --s) {
    auto shard = MakeShard(layout, partitioner, s, rule, init);
    Result<ShardFile> file = dir.LoadShard(1, s, *layout, *partitioner);
    REQUIRE(file.ok());
    REQUIRE(shard->Restore(*file).ok());
    CHECK(shard->StateKeys() == shards[s]->StateKeys());
    CHECK(SameBytes(shard->StateBlocks(), WholeStateBlocks(whole->state, shard->StateKeys())));
    CHECK(SameBytes(shard->StateBlocks(), shards[s]->StateBlocks()));
    restored.insert(restored.begin(), std::move(shard));
  }
  CHECK(restored[0]->num_rows_held() + restored[1]->num_rows_held() +
            restored[2]->num_rows_held() ==
        7);

  // The next rounds give the same bytes on the restored shards, old and new rows alike.
  round(shards, 3, {5, 17, 123456});
  round(restored, 3, {5, 17, 123456});
  for (int s = 0; s < kShards; ++s) {
    CHECK(SameBytes(restored[s]->StateBlocks(), shards[s]->StateBlocks()));
    CHECK(restored[s]->StateKeys() == shards[s]->StateKeys());
  }
}

TEST_CASE("Restore refuses a state that is not the shard's, changing nothing", "[runtime]") {
  auto layout = Layout(16);
  std::shared_ptr<const shuffle::Partitioner> partitioner =
      shuffle::MakePartitioner(shuffle::ShuffleMode::kSort, *layout, kShards);
  const RowInit init{InitScheme::kUniform, 0.5f, 4};
  auto source = MakeShard(layout, partitioner, 0, "adagrad", init);
  source->Initialize();
  ShardFile file;
  file.num_slots = 1;
  file.keys = source->StateKeys();
  file.values = source->StateBlocks();
  auto shard = MakeShard(layout, partitioner, 0, "adagrad", init);
  shard->Initialize();
  const std::vector<float> before = shard->StateBlocks();

  SECTION("another update rule") {
    file.num_slots = 2;
    const Status s = shard->Restore(file);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(s.message() ==
          "shard 0 cannot resume: the checkpoint's update rule keeps 2 slots per parameter, "
          "this job's 1");
  }
  SECTION("a row of another shard") {
    file.keys.push_back(ParamKey(2, kRows - 1));  // the last range: shard 2's
    file.values.resize(file.values.size() + 4, 1.0f);
    const Status s = shard->Restore(file);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message() ==
          "shard 0 cannot restore tensor \"emb\" (id 2) row 1048575: not a block or row it owns");
  }
  SECTION("a block missing") {
    file.keys.erase(file.keys.begin());
    file.values.erase(file.values.begin(), file.values.begin() + 32);
    const Status s = shard->Restore(file);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message() == "shard 0 cannot restore a state holding " +
                             std::to_string(shard->keys().size() - 1) + " of its " +
                             std::to_string(shard->keys().size()) + " blocks");
  }
  SECTION("a value short") {
    file.keys.push_back(ParamKey(2, 0));  // a row of shard 0's range: fine
    file.values.resize(file.values.size() + 3, 1.0f);
    const Status s = shard->Restore(file);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message() == "shard 0 cannot restore a state of " + std::to_string(file.values.size()) +
                             " values: its keys hold " + std::to_string(file.values.size() + 1));
  }
  CHECK(SameBytes(shard->StateBlocks(), before));
  CHECK(shard->num_rows_held() == 0);
}

}  // namespace
}  // namespace mrtrain::runtime
