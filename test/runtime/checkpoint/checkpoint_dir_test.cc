#include "runtime/checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/log.h"
#include "engine/tensor/model_layout.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/testing/captured_log.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::CapturedLog;
using mrtrain::testing::PutLittleEndian;
using mrtrain::testing::Reseal;
using mrtrain::testing::SameCheckpoint;
using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::TempDir;

// Every entry under `dir`, relative to it, sorted.
std::vector<std::string> Tree(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    names.push_back(std::filesystem::relative(entry.path(), dir).string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Rewrites a file in place through a fresh inode, as a damaged copy would be.
void Replace(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
}

void Truncate(const std::string& path, size_t keep) {
  Replace(path, TempDir::Read(path).substr(0, keep));
}

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

// The keys of shard `shard` when the layout's keys are dealt round-robin, so that every shard
// holds blocks of several tensors, interleaved with the others'.
std::vector<ParamKey> DealtKeys(const ModelLayout& layout, int shard, int num_shards) {
  std::vector<ParamKey> keys;
  for (size_t i = shard; i < layout.keys().size(); i += num_shards) {
    keys.push_back(layout.keys()[i]);
  }
  return keys;
}

// What shard hosts and the master do for one epoch: each host writes its shard file, then the
// master commits the manifest listing what the hosts reported.
Status SaveSharded(CheckpointDir* dir, const Checkpoint& c, int num_shards) {
  std::vector<ShardFileInfo> infos;
  for (int shard = 0; shard < num_shards; ++shard) {
    const ShardFile file = MakeShardFile(c.state, DealtKeys(*c.state.layout, shard, num_shards),
                                         c.epochs_done, shard, num_shards, c.fingerprint);
    Result<ShardFileInfo> info = dir->WriteShard(file);
    if (!info.ok()) return info.status();
    infos.push_back(*info);
  }
  return dir->Commit(ManifestOf(c, std::move(infos)));
}

// Commits a manifest of `c` over the given shard files, written directly at the paths the
// manifest names so that they can hold anything.
Status SaveShards(CheckpointDir* dir, const Checkpoint& c, const std::vector<ShardFile>& files) {
  std::vector<ShardFileInfo> infos;
  const int num_shards = static_cast<int>(files.size());
  for (int shard = 0; shard < num_shards; ++shard) {
    const std::string path = dir->ShardPath(c.epochs_done, shard, num_shards);
    Result<ShardFileInfo> info = WriteShardFile(path, files[shard]);
    if (!info.ok()) return info.status();
    info->name = std::filesystem::relative(path, dir->dir()).string();
    infos.push_back(*info);
  }
  return dir->Commit(ManifestOf(c, std::move(infos)));
}

void CheckSame(const Checkpoint& a, const Checkpoint& b) {
  std::string why;
  const bool same = SameCheckpoint(a, b, &why);
  INFO(why);
  CHECK(same);
}

TEST_CASE("checkpoint files are named by epoch, shard and shard count", "[runtime]") {
  CheckpointDir checkpoints("/ckpts", 2);
  CHECK(checkpoints.ShardPath(3, 1, 3) == "/ckpts/ckpt-000003/shard-00001-of-00003.mrts");
  CHECK(checkpoints.ShardPath(1234567, 0, 1) == "/ckpts/ckpt-1234567/shard-00000-of-00001.mrts");
  CHECK(checkpoints.ManifestPath(3) == "/ckpts/ckpt-000003.manifest");
  CHECK(CheckpointDir("/ckpts/", 2).ManifestPath(3) == "/ckpts/ckpt-000003.manifest");
}

TEST_CASE("a sharded checkpoint loads back exactly as the state it was cut from", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.File("ckpts"), 3);
  // The sample's tensors end in short blocks (block_size 100: W1 has 1024 floats, b1 32).
  Checkpoint c = SampleCheckpoint(3);
  int num_shards = 1;
  SECTION("one shard, two slots") { num_shards = 1; }
  SECTION("three shards, two slots") { num_shards = 3; }
  SECTION("three shards, no slots") {
    num_shards = 3;
    c.state.slots.clear();
  }
  SECTION("more shards than blocks: some own none") { num_shards = 20; }
  REQUIRE(SaveSharded(&checkpoints, c, num_shards).ok());
  for (int shard = 0; shard < num_shards; ++shard) {
    CHECK(std::filesystem::is_regular_file(checkpoints.ShardPath(3, shard, num_shards)));
  }
  CHECK(checkpoints.ListEpochs() == std::vector<int64_t>{3});

  Result<Checkpoint> loaded = checkpoints.Load(3);
  REQUIRE(loaded.ok());
  CheckSame(c, *loaded);
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == c.epochs_done);
  CheckSame(c, *checkpoints.Load(latest->epochs_done));
}

TEST_CASE("LatestCommitted names the newest checkpoint and Load a given one", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  for (int epoch = 1; epoch <= 3; ++epoch) {
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(epoch, epoch), 2).ok());
  }
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 3);
  CheckSame(SampleCheckpoint(3, 3), *checkpoints.Load(latest->epochs_done));
  Result<Checkpoint> second = checkpoints.Load(2);
  REQUIRE(second.ok());
  CheckSame(SampleCheckpoint(2, 2), *second);
  Result<Checkpoint> missing = checkpoints.Load(7);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

TEST_CASE("checkpoints are ordered by epoch number, not by name", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 2);
  for (int64_t epoch : {999999, 1000000, 1000001}) {
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(epoch), 2).ok());
  }
  // By name "ckpt-1000000" < "ckpt-999999"; by epoch 999999 is the oldest.
  CHECK(checkpoints.ListEpochs() == std::vector<int64_t>{1000000, 1000001});
  CHECK_FALSE(std::filesystem::exists(tmp.File("ckpt-999999")));
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 1000001);
}

TEST_CASE("LatestCommitted falls back past a damaged checkpoint and warns naming the file",
          "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  for (int epoch = 1; epoch <= 3; ++epoch) {
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(epoch), 3).ok());
  }
  const std::string shard = checkpoints.ShardPath(3, 1, 3);
  const std::string good = TempDir::Read(shard);
  std::string expected_error;

  SECTION("a shard file truncated") {
    for (size_t length : {size_t{0}, size_t{11}, size_t{100}, good.size() / 2, good.size() - 1}) {
      Truncate(shard, length);
      Result<Checkpoint> direct = checkpoints.Load(3);
      INFO("length " << length);
      REQUIRE_FALSE(direct.ok());
      CHECK(direct.status().code() == StatusCode::kCorruption);
      CHECK_THAT(direct.status().message(), Catch::StartsWith(shard + ": has "));
      Replace(shard, good);
    }
    Truncate(shard, 100);
    expected_error = shard + ": has 100 bytes, but the manifest records";
  }
  SECTION("a shard file with a flipped byte") {
    std::string bad = good;
    bad[bad.size() / 2] ^= 0x04;
    Replace(shard, bad);
    expected_error = shard + ": checksum mismatch";
  }
  SECTION("a shard file missing") {
    std::filesystem::remove(shard);
    expected_error =
        shard + ": missing, but " + checkpoints.ManifestPath(3) + " lists it as shard 1";
  }
  SECTION("a shard file replaced by a sound one of another checkpoint") {
    Replace(shard, TempDir::Read(checkpoints.ShardPath(2, 1, 3)));
    expected_error = shard + ": its CRC32C is";
  }
  SECTION("the manifest truncated") {
    Truncate(checkpoints.ManifestPath(3), 40);
    expected_error = checkpoints.ManifestPath(3) + ": truncated at byte 40";
  }
  CapturedLog log("checkpoint");
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 2);
  CheckSame(SampleCheckpoint(2), *checkpoints.Load(latest->epochs_done));
  CHECK_THAT(log.text(), Catch::Contains("warn") && Catch::Contains("epoch 3") &&
                             Catch::Contains(expected_error));
  Result<Checkpoint> direct = checkpoints.Load(3);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.status().code() == StatusCode::kCorruption);
  CHECK_THAT(direct.status().message(), Catch::StartsWith(expected_error));
}

TEST_CASE("the blocks of a checkpoint's shard files cover every block exactly once", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(2), 2).ok());
  const Checkpoint c = SampleCheckpoint(3);
  const ModelLayout& layout = *c.state.layout;
  std::vector<ParamKey> first = DealtKeys(layout, 0, 2);
  std::vector<ParamKey> second = DealtKeys(layout, 1, 2);
  std::string expected_error;
  SECTION("a block in two shard files") {
    second.push_back(ParamKey(0, 10));  // W1's last block, which the first holds too
    expected_error = checkpoints.ShardPath(3, 1, 2) + ": holds block 10 of tensor 'W1', which " +
                     checkpoints.ShardPath(3, 0, 2) + " holds too";
  }
  SECTION("a block in none") {
    second.erase(std::find(second.begin(), second.end(), ParamKey(3, 0)));
    expected_error = checkpoints.ManifestPath(3) + ": no shard file holds block 0 of tensor 'b2'";
  }
  SECTION("so many blocks in none that the files are too small for the model") {
    second.erase(std::find(second.begin(), second.end(), ParamKey(0, 3)));
    // Checked before the state is allocated; 1155 parameters and 2 slots need 13860 bytes.
    expected_error = checkpoints.ManifestPath(3) + ": the shard files have ";
  }
  SECTION("a block the model does not have") {
    second.push_back(ParamKey(3, 1));
    expected_error = checkpoints.ShardPath(3, 1, 2) +
                     ": holds block 1 of tensor 3, which the model does not have";
  }
  std::vector<ShardFile> files = {MakeShardFile(c.state, first, 3, 0, 2, c.fingerprint),
                                  MakeShardFile(c.state, {}, 3, 1, 2, c.fingerprint)};
  // MakeShardFile insists on keys of the layout; write the second's keys by hand.
  std::sort(second.begin(), second.end());
  files[1].keys = second;
  for (ParamKey key : second) {
    const int64_t length = layout.IsValid(key) ? layout.Range(key).length : 1;
    files[1].values.insert(files[1].values.end(), length * 3, 0.5f);
  }
  REQUIRE(SaveShards(&checkpoints, c, files).ok());

  Result<Checkpoint> direct = checkpoints.Load(3);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.status().code() == StatusCode::kCorruption);
  CHECK_THAT(direct.status().message(), Catch::StartsWith(expected_error));
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 2);
}

TEST_CASE("a shard file must be of the manifest's checkpoint and hold whole blocks", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  const Checkpoint c = SampleCheckpoint(3);
  std::vector<ShardFile> files = {
      MakeShardFile(c.state, DealtKeys(*c.state.layout, 0, 2), 3, 0, 2, c.fingerprint),
      MakeShardFile(c.state, DealtKeys(*c.state.layout, 1, 2), 3, 1, 2, c.fingerprint)};
  const std::string path = checkpoints.ShardPath(3, 1, 2);
  std::string expected_error;
  SECTION("another epoch") {
    files[1].epochs_done = 2;
    expected_error = path + ": epochs_done is 2, but " + checkpoints.ManifestPath(3) + " records 3";
  }
  SECTION("another step") {
    files[1].step = 7;
    expected_error = path + ": step is 7, but " + checkpoints.ManifestPath(3) + " records 3001";
  }
  SECTION("another job") {
    files[1].fingerprint = "other";
    expected_error = path + ": the fingerprint is 'other'";
  }
  SECTION("another shard index") {
    files[1].shard = 0;
    expected_error =
        path + ": the shard is 0 of 2, but " + checkpoints.ManifestPath(3) + " records 1 of 2";
  }
  SECTION("another slot count") {
    files[1].num_slots = 1;
    expected_error = path + ": num_slots is 1";
  }
  SECTION("a value too few") {
    files[1].values.pop_back();
    expected_error = path + ": has ";
  }
  SECTION("a value too many") {
    files[1].values.push_back(1);
    expected_error = path + ": has ";
  }
  REQUIRE(SaveShards(&checkpoints, c, files).ok());
  Result<Checkpoint> direct = checkpoints.Load(3);
  REQUIRE_FALSE(direct.ok());
  CHECK(direct.status().code() == StatusCode::kCorruption);
  CHECK_THAT(direct.status().message(), Catch::StartsWith(expected_error));
}

TEST_CASE("LatestCommitted reports kNotFound naming what it tried", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.File("ckpts"), 5);
  SECTION("no directory") {
    Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
    REQUIRE_FALSE(latest.ok());
    CHECK(latest.status().code() == StatusCode::kNotFound);
    CHECK(latest.status().message() == "no checkpoint in " + tmp.File("ckpts"));
  }
  SECTION("every checkpoint damaged") {
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(1), 2).ok());
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(2), 2).ok());
    Truncate(checkpoints.ManifestPath(1), 100);
    std::filesystem::remove(checkpoints.ShardPath(2, 0, 2));
    Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
    REQUIRE_FALSE(latest.ok());
    CHECK(latest.status().code() == StatusCode::kNotFound);
    CHECK_THAT(latest.status().message(),
               Catch::StartsWith("no valid checkpoint in " + tmp.File("ckpts") + "; tried: ") &&
                   Catch::Contains("ckpt-000001.manifest: truncated at byte 100") &&
                   Catch::Contains("ckpt-000002/shard-00000-of-00002.mrts: missing"));
  }
}

TEST_CASE("LatestCommitted does not fall back past a file of a newer format", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 5);
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(1), 2).ok());
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(2), 2).ok());
  std::string path;
  SECTION("the manifest") { path = checkpoints.ManifestPath(2); }
  SECTION("a shard file") { path = checkpoints.ShardPath(2, 1, 2); }
  std::string bytes = TempDir::Read(path);
  PutLittleEndian(&bytes, 8, 3, 4);  // format version 3, by a newer build
  Reseal(&bytes);
  Replace(path, bytes);
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE_FALSE(latest.ok());
  CHECK(latest.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(latest.status().message(), Catch::StartsWith(path + ": written in checkpoint"));
}

TEST_CASE("committing keeps the newest K checkpoints and deletes the others' shard files",
          "[runtime]") {
  TempDir tmp;
  const std::string dir = tmp.File("ckpts");
  CheckpointDir checkpoints(dir, 2);
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(1), 2).ok());  // creates the directory
  tmp.Write("ckpts/notes.txt", "mine");
  tmp.Write("ckpts/ckpt-000009.mrt", "an old single-file checkpoint");
  tmp.Write("ckpts/ckpt-9/x", "not canonical");
  for (int epoch = 2; epoch <= 4; ++epoch) {
    REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(epoch), 2).ok());
  }
  CHECK(checkpoints.ListEpochs() == std::vector<int64_t>{3, 4});
  CHECK(Tree(dir) ==
        std::vector<std::string>{
            "ckpt-000003", "ckpt-000003.manifest", "ckpt-000003/shard-00000-of-00002.mrts",
            "ckpt-000003/shard-00001-of-00002.mrts", "ckpt-000004", "ckpt-000004.manifest",
            "ckpt-000004/shard-00000-of-00002.mrts", "ckpt-000004/shard-00001-of-00002.mrts",
            "ckpt-000009.mrt", "ckpt-9", "ckpt-9/x", "notes.txt"});
}

TEST_CASE("committing deletes what interrupted checkpoints left, up to its epoch only",
          "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 3);
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(1), 2).ok());
  // A crash while epoch 2 was being written, then a resumed run that recommits epoch 2 with a
  // new process id, while hosts already write epoch 3.
  tmp.Write("ckpt-000002/shard-00000-of-00002.mrts", "from the crashed run");
  tmp.Write("ckpt-000002/shard-00001-of-00002.mrts.tmp.4242", "cut short by the crash");
  tmp.Write("ckpt-000002.manifest.tmp.4242", "cut short by the crash");
  tmp.Write("ckpt-000001/shard-00000-of-00002.mrts.tmp.77", "a host's retried write");
  tmp.Write("ckpt-000000/shard-00000-of-00001.mrts", "a checkpoint never committed");
  tmp.Write("ckpt-000003/shard-00000-of-00002.mrts.tmp.99", "being written");
  tmp.Write("ckpt-000003.manifest.tmp.99", "a later epoch");
  tmp.Write("notes.tmp.1", "not ours");
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(2), 2).ok());
  CHECK(Tree(tmp.path()) ==
        std::vector<std::string>{
            "ckpt-000001", "ckpt-000001.manifest", "ckpt-000001/shard-00000-of-00002.mrts",
            "ckpt-000001/shard-00001-of-00002.mrts", "ckpt-000002", "ckpt-000002.manifest",
            "ckpt-000002/shard-00000-of-00002.mrts", "ckpt-000002/shard-00001-of-00002.mrts",
            "ckpt-000003", "ckpt-000003.manifest.tmp.99",
            "ckpt-000003/shard-00000-of-00002.mrts.tmp.99", "notes.tmp.1"});
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 2);
  CheckSame(SampleCheckpoint(2), *checkpoints.Load(latest->epochs_done));
}

TEST_CASE("a resumed run's commit is not pruned by later manifests of an earlier run",
          "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 1);
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(5), 2).ok());
  Truncate(checkpoints.ManifestPath(5), 10);  // so the run resumes from an older one
  REQUIRE(SaveSharded(&checkpoints, SampleCheckpoint(3), 2).ok());
  CHECK(checkpoints.ListEpochs() == std::vector<int64_t>{3, 5});
  Result<CheckpointManifest> latest = checkpoints.LatestCommitted();
  REQUIRE(latest.ok());
  CHECK(latest->epochs_done == 3);
}

TEST_CASE("Commit refuses shard files named other than WriteShard names them", "[runtime]") {
  TempDir tmp;
  CheckpointDir checkpoints(tmp.path(), 2);
  const Checkpoint c = SampleCheckpoint(3);
  CheckpointManifest m = ManifestOf(c, {{"ckpt-000003/shard-00000-of-00002.mrts", 1, 2},
                                        {"elsewhere/shard-00001-of-00002.mrts", 1, 2}});
  const Status s = checkpoints.Commit(m);
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("'elsewhere/shard-00001-of-00002.mrts'"));
  CHECK(checkpoints.ListEpochs().empty());
}

TEST_CASE("Commit and WriteShard fail with kIOError when the directory cannot be made",
          "[runtime]") {
  TempDir tmp;
  tmp.Write("file", "x");
  CheckpointDir checkpoints(tmp.File("file/ckpts"), 2);
  const Checkpoint c = SampleCheckpoint(1);
  Result<ShardFileInfo> info = checkpoints.WriteShard(
      MakeShardFile(c.state, c.state.layout->keys(), 1, 0, 1, c.fingerprint));
  REQUIRE_FALSE(info.ok());
  CHECK(info.status().code() == StatusCode::kIOError);
  CHECK_THAT(info.status().message(), Catch::Contains(tmp.File("file/ckpts")));
  const Status s =
      checkpoints.Commit(ManifestOf(c, {{"ckpt-000001/shard-00000-of-00001.mrts", 1, 2}}));
  CHECK(s.code() == StatusCode::kIOError);
  CHECK_THAT(s.message(), Catch::Contains(tmp.File("file/ckpts")));
}

}  // namespace
}  // namespace mrtrain::runtime
