// Writes the valid seeds of corpus/sharded_checkpoint_fuzz with the real writers, so they
// follow the formats as the code writes them: the shard file holding W's short last block and
// b's only block of a tiny model (W[2x3], b[3], block_size 4, one slot), and the manifest of a
// two-shard checkpoint of that model, each as a whole file ("\0" mode byte) and without its
// trailer ("\1": the fuzz target appends a valid one).
//
//   CORPUS=test/fuzz/corpus/sharded_checkpoint_fuzz
//   mkdir -p $CORPUS
//   bazel run //test/fuzz:make_sharded_checkpoint_seeds -- $PWD/$CORPUS

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/api/views.h"
#include "engine/base/status.h"
#include "engine/tensor/model_layout.h"
#include "engine/tensor/model_state.h"
#include "engine/tensor/param_key.h"
#include "runtime/checkpoint/shard_file.h"

namespace {

using mrtrain::runtime::CheckpointManifest;
using mrtrain::runtime::ShardFileInfo;

std::vector<mrtrain::api::TensorSpec> TinySpecs() {
  std::vector<mrtrain::api::TensorSpec> specs(2);
  specs[0].name = "W";
  specs[0].shape = {2, 3};
  specs[1].name = "b";
  specs[1].shape = {3};
  specs[1].role = mrtrain::api::TensorSpec::Role::kBias;
  return specs;
}

mrtrain::ModelState TinyState() {
  mrtrain::ModelState state;
  state.layout = std::make_shared<const mrtrain::ModelLayout>(
      mrtrain::ModelLayout::Create(TinySpecs(), 4).value());
  state.tensors = {{1, -2, 0.5f, 0, 3, -0.25f}, {0.1f, 0.2f, 0.3f}};
  state.slots = {{{0, 0, 1, 1, 2, 2}, {-1, 0, 1}}};
  state.step = 7;
  return state;
}

CheckpointManifest TinyManifest(std::vector<ShardFileInfo> shards) {
  CheckpointManifest m;
  m.epochs_done = 2;
  m.step = 7;
  m.fingerprint = "f00d";
  m.model_type = "softmax";
  m.update_rule = "momentum";
  m.model_params.Set("classes", "3");
  m.data_shape = {2, 3, false};
  m.tensors = TinySpecs();
  m.block_size = 4;
  m.num_slots = 1;
  m.shards = std::move(shards);
  return m;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return static_cast<bool>(out);
}

// Writes `file` as the seeds "<stem><ext>" (sealed) and "<stem>_unsealed<ext>" (trailer cut
// off).
bool WriteSeeds(const std::string& folder, const std::string& stem, const std::string& ext,
                const std::string& file) {
  return WriteAll(folder + "/" + stem + ext, '\0' + file) &&
         WriteAll(folder + "/" + stem + "_unsealed" + ext, '\1' + file.substr(0, file.size() - 12));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  const std::string folder = argv[1];
  const std::string shard_tmp = folder + "/.tmp.mrts", manifest_tmp = folder + "/.tmp.manifest";
  const auto shard = mrtrain::runtime::MakeShardFile(
      TinyState(), {mrtrain::ParamKey(0, 1), mrtrain::ParamKey(1, 0)}, 2, 1, 2, "f00d");
  mrtrain::Result<ShardFileInfo> info = mrtrain::runtime::WriteShardFile(shard_tmp, shard);
  mrtrain::Status status = info.status();
  if (status.ok()) {
    status = mrtrain::runtime::WriteManifestFile(
        manifest_tmp,
        TinyManifest({{"ckpt-000002/shard-00000-of-00002.mrts", 132, 0x12345678},
                      {"ckpt-000002/shard-00001-of-00002.mrts", info->bytes, info->crc32c}}));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  }
  const std::string shard_file = ReadAll(shard_tmp), manifest_file = ReadAll(manifest_tmp);
  std::remove(shard_tmp.c_str());
  std::remove(manifest_tmp.c_str());
  const bool ok = WriteSeeds(folder, "valid_shard", ".mrts", shard_file) &&
                  WriteSeeds(folder, "valid", ".manifest", manifest_file);
  if (!ok) std::fprintf(stderr, "cannot write the seeds in %s\n", folder.c_str());
  return ok ? 0 : 1;
}
