// Writes the valid seeds of corpus/checkpoint_fuzz with the real writers, so they follow the
// format as the code writes it: a tiny checkpoint (W[2x3], b[3], one slot), as a whole file
// ("\0" mode byte) and without its trailer ("\1": the fuzz target appends a valid one), and
// the same model as an .npz archive.
//
//   bazel run //test/fuzz:make_checkpoint_seeds -- $PWD/test/fuzz/corpus/checkpoint_fuzz

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
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/npz_writer.h"

namespace {

using mrtrain::runtime::Checkpoint;

Checkpoint TinyCheckpoint() {
  std::vector<mrtrain::api::TensorSpec> specs(2);
  specs[0].name = "W";
  specs[0].shape = {2, 3};
  specs[1].name = "b";
  specs[1].shape = {3};
  specs[1].role = mrtrain::api::TensorSpec::Role::kBias;
  Checkpoint ckpt;
  ckpt.epochs_done = 2;
  ckpt.fingerprint = "f00d";
  ckpt.model_type = "softmax";
  ckpt.update_rule = "momentum";
  ckpt.model_params.Set("classes", "3");
  ckpt.data_shape = {2, 3, false};
  ckpt.state.layout = std::make_shared<const mrtrain::ModelLayout>(
      mrtrain::ModelLayout::Create(std::move(specs), 4).value());
  ckpt.state.tensors = {{1, -2, 0.5f, 0, 3, -0.25f}, {0.1f, 0.2f, 0.3f}};
  ckpt.state.slots = {{{0, 0, 1, 1, 2, 2}, {-1, 0, 1}}};
  ckpt.state.step = 7;
  return ckpt;
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  const std::string folder = argv[1];
  const Checkpoint ckpt = TinyCheckpoint();
  const std::string tmp = folder + "/.tmp.mrt";
  mrtrain::Status status = mrtrain::runtime::WriteCheckpointFile(tmp, ckpt);
  if (status.ok()) status = mrtrain::runtime::WriteNpz(folder + "/.tmp.npz", ckpt.state);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 1;
  }
  const std::string file = ReadAll(tmp);
  const std::string npz = ReadAll(folder + "/.tmp.npz");
  std::remove(tmp.c_str());
  std::remove((folder + "/.tmp.npz").c_str());
  const bool ok =
      WriteAll(folder + "/valid.mrt", '\0' + file) &&
      WriteAll(folder + "/valid_unsealed.mrt", '\1' + file.substr(0, file.size() - 12)) &&
      WriteAll(folder + "/valid.npz", '\0' + npz);
  if (!ok) std::fprintf(stderr, "cannot write the seeds in %s\n", folder.c_str());
  return ok ? 0 : 1;
}
