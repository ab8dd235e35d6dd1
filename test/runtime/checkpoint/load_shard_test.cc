// CheckpointDir::LoadShard: a shard host reads only its own shard file of a checkpoint, checked
// against the manifest and against the blocks its shard owns.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/tensor/model_layout.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "shuffle/partition/partitioner.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

constexpr int kShards = 3;

CheckpointManifest ManifestOf(const Checkpoint& c, std::vector<ShardFileInfo> shards) {
  CheckpointManifest m;
  m.epochs_done = c.epochs_done;
  m.step = c.state.step;
  m.fingerprint = c.fingerprint;
  m.model_type = c.model_type;
  m.update_rule = c.update_rule;
  m.model_params = c.model_params;
  m.data_shape = c.data_shape;
  m.tensors = c.state.layout->specs();
  m.block_size = c.state.layout->block_size();
  m.num_slots = static_cast<int32_t>(c.state.slots.size());
  m.shards = std::move(shards);
  return m;
}

// The shard file shard hosts write for `c` when `partitioner` places the blocks.
ShardFile FileOf(const Checkpoint& c, const shuffle::Partitioner& partitioner, int shard) {
  return MakeShardFile(c.state, shuffle::KeysOfShard(partitioner, *c.state.layout, shard),
                       c.epochs_done, shard, kShards, c.fingerprint);
}

// Commits a manifest of `c` over `files`, each written where the manifest says shard i is.
void Save(CheckpointDir* dir, const Checkpoint& c, const std::vector<ShardFile>& files) {
  std::vector<ShardFileInfo> infos;
  for (int shard = 0; shard < kShards; ++shard) {
    const std::string path = dir->ShardPath(c.epochs_done, shard, kShards);
    Result<ShardFileInfo> info = WriteShardFile(path, files[shard]);
    REQUIRE(info.ok());
    info->name = std::filesystem::relative(path, dir->dir()).string();
    infos.push_back(*info);
  }
  REQUIRE(dir->Commit(ManifestOf(c, std::move(infos))).ok());
}

bool SameFile(const ShardFile& a, const ShardFile& b) {
  return a.epochs_done == b.epochs_done && a.step == b.step && a.shard == b.shard &&
         a.num_shards == b.num_shards && a.fingerprint == b.fingerprint &&
         a.num_slots == b.num_slots && a.keys == b.keys && a.values.size() == b.values.size() &&
         (a.values.empty() ||
          std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0);
}

TEST_CASE("a host loads its own shard file, and needs no other", "[runtime]") {
  TempDir tmp;
  CheckpointDir dir(tmp.File("ckpts"), 2);
  const Checkpoint c = SampleCheckpoint(3);
  const ModelLayout& layout = *c.state.layout;
  std::unique_ptr<shuffle::Partitioner> partitioner;
  SECTION("hash") { partitioner = std::make_unique<shuffle::HashPartitioner>(kShards); }
  SECTION("range") { partitioner = std::make_unique<shuffle::RangePartitioner>(layout, kShards); }
  std::vector<ShardFile> files;
  for (int shard = 0; shard < kShards; ++shard) files.push_back(FileOf(c, *partitioner, shard));
  Save(&dir, c, files);
  for (int shard = 0; shard < kShards; ++shard) {
    Result<ShardFile> loaded = dir.LoadShard(3, shard, layout, *partitioner);
    REQUIRE(loaded.ok());
    CHECK(SameFile(*loaded, files[shard]));
    CHECK_FALSE(loaded->keys.empty());
  }
  // The other shards' files are not read: a host restores with only its own at hand.
  std::filesystem::remove(dir.ShardPath(3, 0, kShards));
  std::filesystem::remove(dir.ShardPath(3, 2, kShards));
  Result<ShardFile> alone = dir.LoadShard(3, 1, layout, *partitioner);
  REQUIRE(alone.ok());
  CHECK(SameFile(*alone, files[1]));
}

TEST_CASE("LoadShard refuses a damaged or foreign shard file, naming it", "[runtime]") {
  TempDir tmp;
  CheckpointDir dir(tmp.File("ckpts"), 2);
  const Checkpoint c = SampleCheckpoint(3);
  const ModelLayout& layout = *c.state.layout;
  const shuffle::HashPartitioner partitioner(kShards);
  std::vector<ShardFile> files;
  for (int shard = 0; shard < kShards; ++shard) files.push_back(FileOf(c, partitioner, shard));
  const std::string path = dir.ShardPath(3, 1, kShards);
  const std::string manifest = dir.ManifestPath(3);
  std::string expected;

  SECTION("missing") {
    Save(&dir, c, files);
    std::filesystem::remove(path);
    expected = path + ": missing, but " + manifest + " lists it as shard 1";
  }
  SECTION("another file of the same size: its CRC is not the manifest's") {
    Save(&dir, c, files);
    // The same blocks with other values (and a fingerprint of the same length).
    const ShardFile other = FileOf(SampleCheckpoint(3, 2), partitioner, 1);
    const uintmax_t size = std::filesystem::file_size(path);
    REQUIRE(WriteShardFile(path, other).ok());
    REQUIRE(std::filesystem::file_size(path) == size);
    expected = path + ": its CRC32C is ";
  }
  SECTION("a byte flipped") {
    Save(&dir, c, files);
    std::string bytes = TempDir::Read(path);
    bytes[bytes.size() / 2] ^= 0x20;
    std::filesystem::remove(path);
    std::ofstream(path, std::ios::binary) << bytes;
    expected = path + ": ";
  }
  SECTION("of another shard index") {
    files[1].shard = 2;
    Save(&dir, c, files);
    expected = path + ": the shard is 2 of 3, but " + manifest + " records 1 of 3";
  }
  SECTION("of another job") {
    files[1].fingerprint = "another-job";
    Save(&dir, c, files);
    expected = path + ": the fingerprint is 'another-job', but " + manifest +
               " records 'job-fingerprint-1'";
  }
  SECTION("of another step") {
    files[1].step = c.state.step + 1;
    Save(&dir, c, files);
    expected = path + ": step is ";
  }
  SECTION("holding a block of another shard") {
    const ParamKey foreign = files[2].keys.front();
    files[1] = MakeShardFile(
        c.state,
        [&] {
          std::vector<ParamKey> keys = files[1].keys;
          keys.push_back(foreign);
          return keys;
        }(),
        3, 1, kShards, c.fingerprint);
    Save(&dir, c, files);
    expected =
        path + ": holds " + layout.DescribeKey(foreign) + ", which shard 2 owns, not shard 1";
  }
  SECTION("lacking one of its blocks") {
    std::vector<ParamKey> keys = files[1].keys;
    const ParamKey lacking = keys[keys.size() / 2];
    keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 2));
    files[1] = MakeShardFile(c.state, keys, 3, 1, kShards, c.fingerprint);
    Save(&dir, c, files);
    expected = path + ": lacks " + layout.DescribeKey(lacking) + ", which shard 1 owns";
  }
  SECTION("lacking its last block") {
    const ParamKey lacking = files[1].keys.back();
    files[1].keys.pop_back();
    files[1].values.resize(files[1].values.size() - layout.Range(lacking).length * 3);
    Save(&dir, c, files);
    expected = path + ": lacks " + layout.DescribeKey(lacking) + ", which shard 1 owns";
  }
  SECTION("with a block that is not in the model") {
    files[1].keys.push_back(ParamKey(9, 0));  // after every key: the writer wants them ascending
    Save(&dir, c, files);
    expected = path +
               ": holds tensor id 9 (the model has 4 tensors) block 0, which the model "
               "does not have";
  }
  SECTION("with too few values for its blocks") {
    files[1].values.pop_back();
    Save(&dir, c, files);
    const size_t floats = files[1].values.size();
    expected = path + ": has " + std::to_string(floats) +
               " values, but its blocks and their slots hold " + std::to_string(floats + 1);
  }
  Result<ShardFile> loaded = dir.LoadShard(3, 1, layout, partitioner);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.status().code() == StatusCode::kCorruption);
  CHECK_THAT(loaded.status().message(), Catch::StartsWith(expected));
}

TEST_CASE("LoadShard refuses a checkpoint of another model or shard count", "[runtime]") {
  TempDir tmp;
  CheckpointDir dir(tmp.File("ckpts"), 2);
  const Checkpoint c = SampleCheckpoint(3);
  const shuffle::HashPartitioner partitioner(kShards);
  std::vector<ShardFile> files;
  for (int shard = 0; shard < kShards; ++shard) files.push_back(FileOf(c, partitioner, shard));
  Save(&dir, c, files);
  const std::string manifest = dir.ManifestPath(3);

  std::vector<api::TensorSpec> specs = c.state.layout->specs();
  const ModelLayout other_blocks = ModelLayout::Create(specs, 50).value();
  Result<ShardFile> blocks = dir.LoadShard(3, 0, other_blocks, partitioner);
  CHECK(blocks.status().code() == StatusCode::kFailedPrecondition);
  CHECK(blocks.status().message() ==
        "cannot resume from " + manifest + ": its block size is 100, the job's 50");

  specs[2].shape = {32, 4};
  const ModelLayout wider = ModelLayout::Create(specs, 100).value();
  Result<ShardFile> shape = dir.LoadShard(3, 0, wider, partitioner);
  CHECK(shape.status().code() == StatusCode::kFailedPrecondition);
  CHECK(shape.status().message() == "cannot resume from " + manifest +
                                        ": its tensor 2 is 'W2' [32, 3], the job's 'W2' [32, 4] "
                                        "(or their roles differ)");

  const shuffle::HashPartitioner two(2);
  Result<ShardFile> count = dir.LoadShard(3, 0, *c.state.layout, two);
  CHECK(count.status().code() == StatusCode::kFailedPrecondition);
  CHECK(count.status().message() ==
        "cannot resume from " + manifest + ": it has 3 shard files, the job 2 reducer shards");

  CHECK(dir.LoadShard(4, 0, *c.state.layout, partitioner).status().code() == StatusCode::kNotFound);
  const Status past = dir.LoadShard(3, kShards, *c.state.layout, partitioner).status();
  CHECK(past.code() == StatusCode::kInvalidArgument);
  CHECK(past.message() == "no reducer shard 3 of 3");
}

}  // namespace
}  // namespace mrtrain::runtime
