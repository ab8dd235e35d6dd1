// libFuzzer target for the readers of sharded checkpoints (runtime/checkpoint/shard_file.h):
// ReadShardFile and ReadManifestFile.
//
// Input: a mode byte, then a file. With bit 0 of the mode set, a valid trailer (total length
// and CRC32C) is appended to the file, so that mutated bodies get past the checksum and are
// decoded as a sound file would be; otherwise the file is taken as it is, which reaches the
// decoders only as a damaged or cut-short file. Every file is given to both readers.

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/base/status.h"
#include "runtime/checkpoint/shard_file.h"
#include "test/fuzz/scratch_files.h"
#include "test/testing/temp_dir.h"

namespace {

using mrtrain::Result;
using mrtrain::Status;
using mrtrain::StatusCode;
using mrtrain::runtime::CheckpointManifest;
using mrtrain::runtime::ShardFile;
using mrtrain::runtime::ShardFileInfo;

void PutLittleEndian(uint64_t v, int n, std::string* out) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// Appends total_length and the CRC32C of everything before the CRC (FORMAT.md, trailer).
void AppendTrailer(std::string* file) {
  PutLittleEndian(file->size() + 12, 8, file);
  PutLittleEndian(mrtrain::Crc32c(file->data(), file->size()), 4, file);
}

// A failed read is an error a caller can act on, with a message.
void CheckFailure(const Status& status) {
  const StatusCode code = status.code();
  MRTRAIN_CHECK(code == StatusCode::kCorruption || code == StatusCode::kFailedPrecondition);
  MRTRAIN_CHECK(!status.message().empty());
}

// A decoded shard file is what the format promises, and since the format has one encoding per
// value, writing it back gives the very bytes it was read from, with the size and CRC a host
// would report for them.
// IndexShardFile (the final model's streaming reader) judges every file as ReadShardFile does,
// and the offsets it notes hold the keys and values ReadShardFile read.
void CheckIndex(const std::string& path, const std::string& file) {
  ShardFileInfo expected;
  expected.bytes = file.size();
  for (size_t i = 0; i < 4 && i < file.size(); ++i) {
    expected.crc32c |= static_cast<uint32_t>(static_cast<uint8_t>(file[file.size() - 4 + i]))
                       << (8 * i);
  }
  Result<ShardFile> shard = mrtrain::runtime::ReadShardFile(path, expected);
  Result<mrtrain::runtime::ShardFileIndex> index = mrtrain::runtime::IndexShardFile(path, expected);
  MRTRAIN_CHECK(index.ok() == shard.ok());
  if (!shard.ok()) {
    MRTRAIN_CHECK(index.status().code() == shard.status().code());
    MRTRAIN_CHECK(index.status().message() == shard.status().message());
    return;
  }
  const ShardFile& h = index->header;
  MRTRAIN_CHECK(h.epochs_done == shard->epochs_done && h.step == shard->step);
  MRTRAIN_CHECK(h.shard == shard->shard && h.num_shards == shard->num_shards);
  MRTRAIN_CHECK(h.fingerprint == shard->fingerprint && h.num_slots == shard->num_slots);
  MRTRAIN_CHECK(index->num_keys == shard->keys.size());
  MRTRAIN_CHECK(index->num_values == shard->values.size());
  const size_t key_bytes = shard->keys.size() * sizeof(uint64_t);
  const size_t value_bytes = shard->values.size() * sizeof(float);
  MRTRAIN_CHECK(index->keys_offset + key_bytes <= file.size());
  MRTRAIN_CHECK(index->values_offset + value_bytes <= file.size());
  MRTRAIN_CHECK(key_bytes == 0 ||
                file.compare(index->keys_offset, key_bytes,
                             reinterpret_cast<const char*>(shard->keys.data()), key_bytes) == 0);
  MRTRAIN_CHECK(value_bytes == 0 ||
                file.compare(index->values_offset, value_bytes,
                             reinterpret_cast<const char*>(shard->values.data()),
                             value_bytes) == 0);
}

void CheckShard(const std::string& path, const std::string& file) {
  CheckIndex(path, file);
  Result<ShardFile> shard = mrtrain::runtime::ReadShardFile(path);
  if (!shard.ok()) return CheckFailure(shard.status());
  MRTRAIN_CHECK(shard->epochs_done >= 0 && shard->step >= 0 && shard->num_slots >= 0);
  MRTRAIN_CHECK(shard->shard >= 0 && shard->shard < shard->num_shards);
  for (size_t i = 1; i < shard->keys.size(); ++i)
    MRTRAIN_CHECK(shard->keys[i - 1] < shard->keys[i]);
  const std::string copy = mrtrain::fuzz::ScratchDir() + "/copy.mrts";
  Result<ShardFileInfo> info = mrtrain::runtime::WriteShardFile(copy, *shard);
  MRTRAIN_CHECK(info.ok());
  MRTRAIN_CHECK(mrtrain::testing::TempDir::Read(copy) == file);
  MRTRAIN_CHECK(info->bytes == file.size());
  MRTRAIN_CHECK(mrtrain::runtime::ReadShardFile(path, *info).ok());
}

// A relative path whose every component names an entry: it cannot leave the checkpoint
// directory, whatever that directory's parents are.
bool StaysInside(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  for (size_t start = 0; start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

void CheckManifest(const std::string& path, const std::string& file) {
  Result<CheckpointManifest> manifest = mrtrain::runtime::ReadManifestFile(path);
  if (!manifest.ok()) return CheckFailure(manifest.status());
  MRTRAIN_CHECK(manifest->epochs_done >= 0 && manifest->step >= 0 && manifest->num_slots >= 0);
  MRTRAIN_CHECK(!manifest->tensors.empty() && !manifest->shards.empty());
  for (const auto& shard : manifest->shards) MRTRAIN_CHECK(StaysInside(shard.name));
  const std::string copy = mrtrain::fuzz::ScratchDir() + "/copy.manifest";
  MRTRAIN_CHECK(mrtrain::runtime::WriteManifestFile(copy, *manifest).ok());
  MRTRAIN_CHECK(mrtrain::testing::TempDir::Read(copy) == file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) != 0) AppendTrailer(&file);
  const std::string path = mrtrain::fuzz::WriteScratchFile("input", file);
  CheckShard(path, file);
  CheckManifest(path, file);
  return 0;
}
