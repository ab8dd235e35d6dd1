// Row-sparse tensors in checkpoint files, sharded checkpoints and model.npz: only the stored
// rows, sorted by id; dense models still written as version 1.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/tensor/model_layout.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/npz_writer.h"
#include "runtime/checkpoint/shard_file.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using api::TensorSpec;
using mrtrain::testing::TempDir;

constexpr int64_t kRows = int64_t{1} << 40;

Checkpoint RowCheckpoint() {
  auto layout = std::make_shared<const ModelLayout>(
      ModelLayout::Create({TensorSpec{"w", {kRows, 2}, TensorSpec::Role::kWeight, true},
                           TensorSpec{"b", {1}, TensorSpec::Role::kBias}},
                          4)
          .value());
  Checkpoint c;
  c.epochs_done = 2;
  c.fingerprint = "fp";
  c.model_type = "logistic";
  c.update_rule = "adagrad";
  c.data_shape = {kRows, 2, true};
  c.state = ModelState::Zeros(layout, 1);
  c.state.step = 6;
  c.state.tensors[1] = {0.25f};
  c.state.slots[0][1] = {1.5f};
  c.state.rows[0].ids = {3, kRows - 1};
  c.state.rows[0].values = {1, 2, 3, 4};
  c.state.rows[0].slots[0] = {5, 6, 7, 8};
  return c;
}

uint32_t VersionOf(const std::string& bytes) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + 8, 4);
  return v;
}

TEST_CASE("a checkpoint file holds a row-sparse tensor's stored rows and reads them back",
          "[runtime]") {
  TempDir dir;
  const Checkpoint c = RowCheckpoint();
  REQUIRE(WriteCheckpointFile(dir.File("m.mrt"), c).ok());
  CHECK(VersionOf(TempDir::Read(dir.File("m.mrt"))) == 2);
  Result<Checkpoint> read = ReadCheckpointFile(dir.File("m.mrt"));
  REQUIRE(read.ok());
  CHECK(read->state.layout->specs()[0].row_sparse);
  CHECK(read->state.layout->specs()[0].shape == std::vector<int64_t>{kRows, 2});
  CHECK(read->state.rows[0].ids == c.state.rows[0].ids);
  CHECK(read->state.rows[0].values == c.state.rows[0].values);
  CHECK(read->state.rows[0].slots[0] == c.state.rows[0].slots[0]);
  CHECK(read->state.tensors[1] == c.state.tensors[1]);
  CHECK(read->state.slots[0][1] == c.state.slots[0][1]);
  // Rows out of order are a caller's bug: nothing written.
  Checkpoint bad = c;
  bad.state.rows[0].ids = {9, 3};
  CHECK(WriteCheckpointFile(dir.File("bad.mrt"), bad).message() ==
        "cannot write checkpoint " + dir.File("bad.mrt") +
            ": the stored rows of row-sparse tensor 'w' are not ascending, in range and of its "
            "dim");
  // A dense model is written as version 1, as before.
  Checkpoint dense = c;
  dense.state = ModelState::Zeros(
      std::make_shared<const ModelLayout>(
          ModelLayout::Create({TensorSpec{"b", {1}, TensorSpec::Role::kBias}}, 4).value()),
      1);
  REQUIRE(WriteCheckpointFile(dir.File("dense.mrt"), dense).ok());
  CHECK(VersionOf(TempDir::Read(dir.File("dense.mrt"))) == 1);
}

TEST_CASE("a sharded checkpoint gathers rows from the shard files, sorted by id", "[runtime]") {
  TempDir dir;
  const Checkpoint c = RowCheckpoint();
  CheckpointDir checkpoints(dir.File("ckpt"), 2);
  // Shard 0 holds the last row and the bias, shard 1 row 3: keys with their params then slot.
  ShardFile s0, s1;
  for (ShardFile* s : {&s0, &s1}) {
    s->epochs_done = 2;
    s->step = 6;
    s->num_shards = 2;
    s->fingerprint = "fp";
    s->num_slots = 1;
  }
  s0.keys = {ParamKey(0, kRows - 1), ParamKey(1, 0)};
  s0.values = {3, 4, 7, 8, 0.25f, 1.5f};
  s1.shard = 1;
  s1.keys = {ParamKey(0, 3)};
  s1.values = {1, 2, 5, 6};
  std::vector<ShardFileInfo> infos;
  for (const ShardFile* s : {&s0, &s1}) {
    Result<ShardFileInfo> info = checkpoints.WriteShard(*s);
    REQUIRE(info.ok());
    infos.push_back(*info);
  }
  CheckpointManifest m;
  m.epochs_done = 2;
  m.step = 6;
  m.fingerprint = "fp";
  m.model_type = "logistic";
  m.update_rule = "adagrad";
  m.data_shape = c.data_shape;
  m.tensors = c.state.layout->specs();
  m.block_size = 4;
  m.num_slots = 1;
  m.shards = infos;
  REQUIRE(checkpoints.Commit(m).ok());
  Result<Checkpoint> loaded = checkpoints.Load(2);
  REQUIRE(loaded.ok());
  CHECK(loaded->state.rows[0].ids == c.state.rows[0].ids);
  CHECK(loaded->state.rows[0].values == c.state.rows[0].values);
  CHECK(loaded->state.rows[0].slots[0] == c.state.rows[0].slots[0]);
  CHECK(loaded->state.tensors[1] == std::vector<float>{0.25f});

  // A row two files hold is named.
  s1.keys = {ParamKey(0, kRows - 1)};
  m.epochs_done = s0.epochs_done = s1.epochs_done = 3;
  m.shards.clear();
  for (const ShardFile* s : {&s0, &s1}) m.shards.push_back(*checkpoints.WriteShard(*s));
  REQUIRE(checkpoints.Commit(m).ok());
  CHECK(checkpoints.Load(3).status().message() ==
        checkpoints.ManifestPath(3) + ": two shard files hold row 1099511627775 of tensor 'w'");
}

TEST_CASE("model.npz holds a row-sparse tensor as NAME.ids and NAME.values", "[runtime]") {
  TempDir dir;
  REQUIRE(WriteNpz(dir.File("model.npz"), RowCheckpoint().state).ok());
  const std::string npz = TempDir::Read(dir.File("model.npz"));
  CHECK(npz.find("w.ids.npy") != std::string::npos);
  CHECK(npz.find("w.values.npy") != std::string::npos);
  CHECK(npz.find("b.npy") != std::string::npos);
  CHECK(npz.find("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }") != std::string::npos);
  CHECK(npz.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }") !=
        std::string::npos);
  CHECK(npz.find("w.npy") == std::string::npos);
}

}  // namespace
}  // namespace mrtrain::runtime
