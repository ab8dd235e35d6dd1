// libFuzzer target for the checkpoint reader (runtime/checkpoint: ReadCheckpointFile and the
// body decoder, and IndexCheckpointFile, which must judge every file alike) and the .npz reader
// (ReadNpz, the .npy header parser).
//
// Input: a mode byte, then a file. With bit 0 of the mode set, a valid trailer (total length
// and CRC32C) is appended to the file, so that mutated bodies get past the checksum and are
// decoded as a sound file would be; otherwise the file is taken as it is, which reaches the
// decoder only as a damaged or cut-short file. Every file is given to both readers.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/npz_reader.h"
#include "test/fuzz/scratch_files.h"
#include "test/testing/temp_dir.h"

namespace {

using mrtrain::Result;
using mrtrain::StatusCode;
using mrtrain::runtime::Checkpoint;

void PutLittleEndian(uint64_t v, int n, std::string* out) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Appends total_length and the CRC32C of everything before the CRC (FORMAT.md, trailer).
void AppendTrailer(std::string* file) {
  PutLittleEndian(file->size() + 12, 8, file);
  PutLittleEndian(mrtrain::Crc32c(file->data(), file->size()), 4, file);
}

// A decoded checkpoint is consistent, and since the format has one encoding per value (sorted
// keys, no slack bytes), writing it back gives the very bytes it was read from.
void CheckRoundTrip(const Checkpoint& ckpt, const std::string& file) {
  const auto& specs = ckpt.state.layout->specs();
  MRTRAIN_CHECK(ckpt.epochs_done >= 0 && ckpt.state.step >= 0);
  MRTRAIN_CHECK(ckpt.state.tensors.size() == specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    MRTRAIN_CHECK(ckpt.state.tensors[t].size() == static_cast<size_t>(specs[t].size()));
    for (const auto& slot : ckpt.state.slots) {
      MRTRAIN_CHECK(slot.size() == specs.size() && slot[t].size() == ckpt.state.tensors[t].size());
    }
  }
  const std::string copy = mrtrain::fuzz::ScratchDir() + "/copy.mrt";
  MRTRAIN_CHECK(mrtrain::runtime::WriteCheckpointFile(copy, ckpt).ok());
  MRTRAIN_CHECK(mrtrain::testing::TempDir::Read(copy) == file);
}

// The reader by offset (predict's, IndexCheckpointFile) judges every file as the whole reader
// does, and the offsets it notes hold the arrays the whole reader read.
void CheckIndex(const std::string& path, const std::string& file, const Result<Checkpoint>& ckpt) {
  mrtrain::runtime::CheckpointArrays arrays;
  Result<Checkpoint> index = mrtrain::runtime::IndexCheckpointFile(path, &arrays);
  MRTRAIN_CHECK(index.ok() == ckpt.ok());
  if (!ckpt.ok()) {
    MRTRAIN_CHECK(index.status().code() == ckpt.status().code());
    MRTRAIN_CHECK(index.status().message() == ckpt.status().message());
    return;
  }
  MRTRAIN_CHECK(arrays.file_bytes == file.size());
  MRTRAIN_CHECK(arrays.file_crc32c == mrtrain::Crc32c(file.data(), file.size()));
  const auto& specs = ckpt->state.layout->specs();
  MRTRAIN_CHECK(arrays.tensors.size() == specs.size());
  const auto same = [&file](uint64_t offset, const void* data, size_t n) {
    return offset + n <= file.size() &&
           (n == 0 || file.compare(offset, n, static_cast<const char*>(data), n) == 0);
  };
  for (size_t t = 0; t < specs.size(); ++t) {
    const auto& a = arrays.tensors[t];
    if (!specs[t].row_sparse) {
      const auto& data = ckpt->state.tensors[t];
      MRTRAIN_CHECK(same(a.data_offset, data.data(), data.size() * sizeof(float)));
      continue;
    }
    const auto& rows = ckpt->state.rows[t];
    MRTRAIN_CHECK(a.num_rows == rows.ids.size());
    MRTRAIN_CHECK(same(a.ids_offset, rows.ids.data(), rows.ids.size() * sizeof(int64_t)));
    MRTRAIN_CHECK(same(a.data_offset, rows.values.data(), rows.values.size() * sizeof(float)));
  }
}

void CheckCheckpoint(const std::string& path, const std::string& file) {
  Result<Checkpoint> ckpt = mrtrain::runtime::ReadCheckpointFile(path);
  CheckIndex(path, file, ckpt);
  if (ckpt.ok()) {
    CheckRoundTrip(*ckpt, file);
    return;
  }
  const StatusCode code = ckpt.status().code();
  MRTRAIN_CHECK(code == StatusCode::kCorruption || code == StatusCode::kFailedPrecondition);
  MRTRAIN_CHECK(!ckpt.status().message().empty());
}

void CheckNpz(const std::string& path) {
  Result<std::vector<mrtrain::runtime::NpyArray>> arrays = mrtrain::runtime::ReadNpz(path);
  if (!arrays.ok()) {
    MRTRAIN_CHECK(arrays.status().code() == StatusCode::kCorruption);
    MRTRAIN_CHECK(!arrays.status().message().empty());
    return;
  }
  for (const auto& array : *arrays) {
    uint64_t elements = 1;
    for (int64_t d : array.shape) {
      MRTRAIN_CHECK(d >= 0);
      elements *= static_cast<uint64_t>(d);
    }
    MRTRAIN_CHECK(array.data.size() == elements);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) != 0) AppendTrailer(&file);
  const std::string path = mrtrain::fuzz::WriteScratchFile("input.mrt", file);
  CheckCheckpoint(path, file);
  CheckNpz(path);
  return 0;
}
