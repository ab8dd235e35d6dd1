// The final model streamed from the shard files: the same bytes as assembling the checkpoint
// whole (CheckpointDir::Load) and writing it (WriteCheckpointFile, WriteNpz), and the same error
// for every damage Load refuses, leaving no model file behind.
#include "runtime/checkpoint/final_model_writer.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/npz_reader.h"
#include "runtime/checkpoint/npz_writer.h"
#include "test/runtime/checkpoint/sample_checkpoint.h"
#include "test/runtime/checkpoint/sharded_checkpoint_maker.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

using mrtrain::testing::PutLittleEndian;
using mrtrain::testing::Reseal;
using mrtrain::testing::RowSparseCheckpoint;
using mrtrain::testing::SampleCheckpoint;
using mrtrain::testing::SaveSharded;
using mrtrain::testing::ShardOf;
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

void Replace(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
}

// What the master did before: the whole checkpoint assembled, then written.
Status WriteWhole(const CheckpointDir& checkpoints, int64_t epoch, const std::string& mrt,
                  const std::string& npz) {
  Result<Checkpoint> whole = checkpoints.Load(epoch);
  if (!whole.ok()) return whole.status();
  MRTRAIN_RETURN_IF_ERROR(WriteNpz(npz, whole->state));
  return WriteCheckpointFile(mrt, *whole);
}

// Both ways, into old/ and new/ under `out`; the streamed files must equal the whole ones.
void CheckSameFiles(const CheckpointDir& checkpoints, int64_t epoch, const std::string& out) {
  std::filesystem::create_directories(out + "/old");
  std::filesystem::create_directories(out + "/new");
  REQUIRE(WriteWhole(checkpoints, epoch, out + "/old/model.mrt", out + "/old/model.npz").ok());
  const Status streamed =
      WriteFinalModel(checkpoints, epoch, out + "/new/model.mrt", out + "/new/model.npz");
  REQUIRE(streamed.ok());
  for (const char* name : {"/model.mrt", "/model.npz"}) {
    const std::string whole = TempDir::Read(out + "/old" + name);
    INFO(name);
    CHECK(whole.size() > 100);
    CHECK(TempDir::Read(out + "/new" + name) == whole);
  }
  CHECK(Tree(out + "/new") == std::vector<std::string>{"model.mrt", "model.npz"});
}

TEST_CASE("the streamed final model of a dense model is the whole path's bytes", "[runtime]") {
  const Checkpoint c = SampleCheckpoint(3);
  for (int shards : {1, 2, 3, 5}) {
    TempDir dir;
    CheckpointDir checkpoints(dir.File("ckpt"), 2);
    REQUIRE(SaveSharded(&checkpoints, c, shards).ok());
    INFO(shards << " shard files");
    CheckSameFiles(checkpoints, 3, dir.File("out"));
  }
}

TEST_CASE("the streamed final model of a row-sparse model is the whole path's bytes", "[runtime]") {
  for (int slots : {0, 1, 2}) {
    for (int shards : {1, 3, 4}) {
      for (bool empty_lin : {false, true}) {
        TempDir dir;
        CheckpointDir checkpoints(dir.File("ckpt"), 2);
        const Checkpoint c = RowSparseCheckpoint(4, slots, 17 + slots, empty_lin);
        REQUIRE(SaveSharded(&checkpoints, c, shards).ok());
        INFO(slots << " slots, " << shards << " shard files, empty_lin " << empty_lin);
        CheckSameFiles(checkpoints, 4, dir.File("out"));
        // The rows really are spread over the files, in id order only once merged.
        if (shards > 1) CHECK(ShardOf(c, 1, shards).keys.size() > 10);
      }
    }
  }
}

TEST_CASE("the streamed model.npz reads back as the model's arrays", "[runtime]") {
  TempDir dir;
  CheckpointDir checkpoints(dir.File("ckpt"), 2);
  const Checkpoint c = RowSparseCheckpoint(4, 1, 5);
  REQUIRE(SaveSharded(&checkpoints, c, 3).ok());
  REQUIRE(WriteFinalModel(checkpoints, 4, dir.File("m.mrt"), dir.File("m.npz")).ok());
  const std::string npz = TempDir::Read(dir.File("m.npz"));
  CHECK(npz.find("{'descr': '<i8', 'fortran_order': False, 'shape': (" +
                 std::to_string(c.state.rows[1].ids.size()) + ",), }") != std::string::npos);
  // The ids of "emb" as the archive stores them: little-endian int64, ascending.
  std::string ids(reinterpret_cast<const char*>(c.state.rows[1].ids.data()),
                  c.state.rows[1].ids.size() * 8);
  CHECK(npz.find(ids) != std::string::npos);
  Result<Checkpoint> model = ReadCheckpointFile(dir.File("m.mrt"));
  REQUIRE(model.ok());
  CHECK(model->state.rows[1].ids == c.state.rows[1].ids);
  CHECK(model->state.rows[3].values == c.state.rows[3].values);
  CHECK(model->state.tensors[0] == c.state.tensors[0]);
}

// ---- Damage: the same error as Load, and nothing left behind ----

// One shard file's keys and their floats (parameters, then each slot), to edit and write back.
struct Entries {
  std::vector<std::pair<ParamKey, std::vector<float>>> items;

  static Entries Of(const ShardFile& s, const ModelLayout& layout) {
    Entries e;
    size_t at = 0;
    for (ParamKey key : s.keys) {
      const size_t n = static_cast<size_t>(layout.Range(key).length) * (1 + s.num_slots);
      e.items.emplace_back(key,
                           std::vector<float>(s.values.begin() + at, s.values.begin() + at + n));
      at += n;
    }
    return e;
  }

  void Into(ShardFile* s) {
    std::sort(items.begin(), items.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    s->keys.clear();
    s->values.clear();
    for (const auto& [key, floats] : items) {
      s->keys.push_back(key);
      s->values.insert(s->values.end(), floats.begin(), floats.end());
    }
  }
};

// A checkpoint written by hosts and master, to be damaged.
class Damaged {
 public:
  Damaged(Checkpoint c, int shards)
      : c_(std::move(c)), shards_(shards), checkpoints_(dir_.File("ckpt"), 2) {
    REQUIRE(SaveSharded(&checkpoints_, c_, shards_).ok());
  }

  std::string ShardPath(int shard) const {
    return checkpoints_.ShardPath(c_.epochs_done, shard, shards_);
  }
  std::string ManifestPath() const { return checkpoints_.ManifestPath(c_.epochs_done); }
  const Checkpoint& checkpoint() const { return c_; }

  // Replaces shard file `shard` with `bytes`, and records its size and CRC in the manifest
  // when `record`, as if the host had written it so.
  void SetShardBytes(int shard, const std::string& bytes, bool record) {
    Replace(ShardPath(shard), bytes);
    if (!record) return;
    Result<CheckpointManifest> m = ReadManifestFile(ManifestPath());
    REQUIRE(m.ok());
    m->shards[shard].bytes = bytes.size();
    uint32_t crc = 0;
    if (bytes.size() >= 4) std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
    m->shards[shard].crc32c = crc;
    REQUIRE(WriteManifestFile(ManifestPath(), *m).ok());
  }

  // Rewrites shard file `shard` as `edit` leaves it, recorded in the manifest.
  void EditShard(int shard, const std::function<void(ShardFile*)>& edit) {
    ShardFile s = ShardOf(c_, shard, shards_);
    edit(&s);
    Result<ShardFileInfo> info = WriteShardFile(ShardPath(shard), s);
    REQUIRE(info.ok());
    SetShardBytes(shard, TempDir::Read(ShardPath(shard)), true);
  }

  // Both ways fail alike, and the streamed way leaves the output folder as it was.
  void CheckSameFailure(const std::string& what) {
    const std::string out = dir_.File("out-" + std::to_string(++attempts_));
    std::filesystem::create_directories(out);
    std::ofstream(out + "/model.mrt") << "the previous model";
    const Status whole = checkpoints_.Load(c_.epochs_done).status();
    const Status streamed =
        WriteFinalModel(checkpoints_, c_.epochs_done, out + "/model.mrt", out + "/model.npz");
    INFO(what);
    INFO("Load: " << whole.ToString());
    INFO("streamed: " << streamed.ToString());
    if (whole.ok()) {
      // Damage Load accepts (a float, a dimension of a row-sparse tensor, a name changed): the
      // streamed files are the whole path's, or both fail to export it (a tensor name libzip
      // refuses), alike.
      std::filesystem::create_directories(out + "/whole");
      const Status exported = WriteWhole(checkpoints_, c_.epochs_done, out + "/whole/model.mrt",
                                         out + "/whole/model.npz");
      if (exported.ok()) {
        REQUIRE(streamed.ok());
        CheckSameFiles(checkpoints_, c_.epochs_done, out + "/both");
        return;
      }
      REQUIRE_FALSE(streamed.ok());
      CHECK(streamed.code() == exported.code());
      std::filesystem::remove_all(out + "/whole");
    } else {
      REQUIRE_FALSE(streamed.ok());
      CHECK(streamed.code() == whole.code());
      CHECK(streamed.message() == whole.message());
    }
    CHECK(Tree(out) == std::vector<std::string>{"model.mrt"});
    CHECK(TempDir::Read(out + "/model.mrt") == "the previous model");
  }

 private:
  TempDir dir_;
  Checkpoint c_;
  int shards_;
  CheckpointDir checkpoints_;
  int attempts_ = 0;
};

Checkpoint ModelFor(bool row_sparse) {
  return row_sparse ? RowSparseCheckpoint(3, 2, 9) : SampleCheckpoint(3);
}

TEST_CASE("every byte of a shard file changed gives the final model Load's outcome", "[runtime]") {
  for (bool row_sparse : {false, true}) {
    Damaged d(ModelFor(row_sparse), 3);
    const std::string good = TempDir::Read(d.ShardPath(1));
    for (size_t at = 0; at < good.size(); at += (at < 256 || at + 24 > good.size()) ? 1 : 61) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ 0x5a);
      Reseal(&bad);
      d.SetShardBytes(1, bad, /*record=*/true);
      d.CheckSameFailure("row_sparse " + std::to_string(row_sparse) + ", byte " +
                         std::to_string(at) + " changed and resealed");
    }
    std::string flipped = good;
    flipped[200] = static_cast<char>(flipped[200] ^ 1);
    d.SetShardBytes(1, flipped, /*record=*/false);
    d.CheckSameFailure("a byte changed, the manifest's CRC no longer matches");
    for (size_t keep : {size_t{0}, size_t{5}, size_t{40}, good.size() / 2, good.size() - 1}) {
      d.SetShardBytes(1, good.substr(0, keep), /*record=*/true);
      d.CheckSameFailure("cut to " + std::to_string(keep) + " bytes, recorded");
      d.SetShardBytes(1, good.substr(0, keep), /*record=*/false);
      d.CheckSameFailure("cut to " + std::to_string(keep) + " bytes");
    }
    d.SetShardBytes(1, good + "extra", /*record=*/true);
    d.CheckSameFailure("bytes after the trailer");
    std::string newer = good;
    PutLittleEndian(&newer, 8, 99, 4);
    Reseal(&newer);
    d.SetShardBytes(1, newer, /*record=*/true);
    d.CheckSameFailure("a newer format version");
    std::filesystem::remove(d.ShardPath(2));
    d.CheckSameFailure("a shard file missing");
  }
}

TEST_CASE("every byte of the manifest changed gives the final model Load's outcome", "[runtime]") {
  for (bool row_sparse : {false, true}) {
    Damaged d(ModelFor(row_sparse), 3);
    const std::string good = TempDir::Read(d.ManifestPath());
    for (size_t at = 0; at < good.size(); ++at) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ 0x21);
      Reseal(&bad);
      Replace(d.ManifestPath(), bad);
      d.CheckSameFailure("manifest byte " + std::to_string(at));
    }
    Replace(d.ManifestPath(), good.substr(0, good.size() / 2));
    d.CheckSameFailure("a manifest cut short");
    std::filesystem::remove(d.ManifestPath());
    d.CheckSameFailure("no manifest");
  }
}

TEST_CASE(
    "shard files inconsistent with each other or the manifest fail the final model as "
    "Load fails them",
    "[runtime]") {
  for (bool row_sparse : {false, true}) {
    const std::string kind = row_sparse ? "row-sparse: " : "dense: ";
    Damaged d(ModelFor(row_sparse), 3);
    const Checkpoint& c = d.checkpoint();
    const ModelLayout& layout = *c.state.layout;
    const ShardFile shard0 = ShardOf(c, 0, 3);
    const auto check = [&](const std::string& what, const std::function<void(ShardFile*)>& edit) {
      d.EditShard(1, edit);
      d.CheckSameFailure(kind + what);
      d.EditShard(1, [](ShardFile*) {});
    };
    check("another epoch", [](ShardFile* s) { ++s->epochs_done; });
    check("another step", [](ShardFile* s) { ++s->step; });
    check("another fingerprint", [](ShardFile* s) { s->fingerprint += "x"; });
    check("another shard index", [](ShardFile* s) { s->shard = 2; });
    check("another shard count", [](ShardFile* s) { s->num_shards = 4; });
    check("another slot count", [](ShardFile* s) { ++s->num_slots; });
    check("a value short", [](ShardFile* s) { s->values.pop_back(); });
    check("a value more", [](ShardFile* s) { s->values.push_back(1); });
    check("a key dropped", [&](ShardFile* s) {
      Entries e = Entries::Of(*s, layout);
      e.items.erase(e.items.begin() + 1);
      e.Into(s);
    });
    check("the first block of shard 0 held too", [&](ShardFile* s) {
      Entries e = Entries::Of(*s, layout);
      e.items.push_back(Entries::Of(shard0, layout).items.front());
      e.Into(s);
    });
    check("a tensor the model does not have", [&](ShardFile* s) {
      Entries e = Entries::Of(*s, layout);
      e.items.push_back({ParamKey(9, 0), {1, 2, 3}});
      e.Into(s);
    });
    if (!row_sparse) continue;
    check("a row past the tensor's rows", [&](ShardFile* s) {
      Entries e = Entries::Of(*s, layout);
      e.items.push_back({ParamKey(3, 1000), {1, 2, 3}});
      e.Into(s);
    });
    check("a row shard 0 holds too", [&](ShardFile* s) {
      Entries e = Entries::Of(*s, layout);
      for (const auto& item : Entries::Of(shard0, layout).items) {
        if (item.first.tensor() == 1) e.items.push_back(item);
      }
      e.Into(s);
    });
  }
}

}  // namespace
}  // namespace mrtrain::runtime
