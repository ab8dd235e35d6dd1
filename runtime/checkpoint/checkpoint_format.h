#pragma once

// Constants of the checkpoint file formats: the whole checkpoint (.mrt), the shard file
// (.mrts) and the manifest (.manifest). The grammars are in runtime/checkpoint/FORMAT.md;
// change both together, and bump a format's version for any change a reader of the current
// version would misread.

#include <cstddef>
#include <cstdint>

namespace mrtrain::runtime::checkpoint_format {

// Eight bytes that no text file or other format of ours starts with, one per format.
inline constexpr char kMagic[8] = {'M', 'R', 'T', 'C', 'K', 'P', 'T', '\0'};
inline constexpr char kShardMagic[8] = {'M', 'R', 'T', 'S', 'H', 'R', 'D', '\0'};
inline constexpr char kManifestMagic[8] = {'M', 'R', 'T', 'M', 'N', 'F', 'T', '\0'};
inline constexpr size_t kMagicSize = sizeof(kMagic);

// The version this build writes, and the newest it reads, of each format. Version 2 of the
// checkpoint and manifest formats adds row-sparse tensors (kRoleRowSparseFlag and their stored
// rows); a file without one is still written as version 1, byte for byte as before, so only
// row-sparse models need a reader of version 2.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kShardFormatVersion = 1;
inline constexpr uint32_t kManifestFormatVersion = 2;
inline constexpr uint32_t kDenseFormatVersion = 1;

// What tells the formats apart: each wraps its own body in the same preamble and trailer.
struct FileKind {
  const char* magic;  // kMagicSize bytes
  uint32_t version;   // the version this build writes and the newest it reads
  const char* noun;   // names the file in messages: "not an mrtrain <noun>"
};
inline constexpr FileKind kCheckpointFile = {kMagic, kFormatVersion, "checkpoint"};
inline constexpr FileKind kShardFile = {kShardMagic, kShardFormatVersion, "checkpoint shard"};
inline constexpr FileKind kManifestFile = {kManifestMagic, kManifestFormatVersion,
                                           "checkpoint manifest"};

// The kind to write a checkpoint or manifest with: version 1 when no tensor is row-sparse.
inline FileKind KindFor(FileKind kind, bool has_row_sparse) {
  if (!has_row_sparse) kind.version = kDenseFormatVersion;
  return kind;
}

// magic + version: what a reader checks before it trusts anything else.
inline constexpr size_t kPreambleSize = kMagicSize + sizeof(uint32_t);

// total_length (u64) + crc32c (u32) at the very end of the file.
inline constexpr size_t kTrailerSize = sizeof(uint64_t) + sizeof(uint32_t);

// The largest block_size, the job spec's limit (model.block_size in jobs/spec/SCHEMA.md).
// Larger values would overflow ModelLayout's block count and size the reducers' buffers.
inline constexpr int64_t kMaxBlockSize = int64_t{1} << 30;

// TensorSpec::Role on disk (one byte). Values are fixed forever: append, never renumber.
inline constexpr uint8_t kRoleWeight = 0;
inline constexpr uint8_t kRoleBias = 1;
// Or'ed into the role byte of a row-sparse tensor (TensorSpec::row_sparse). A reader that
// predates it refuses the file naming the unknown role; dense tensors' bytes are unchanged.
inline constexpr uint8_t kRoleRowSparseFlag = 0x10;

// The smallest encodings, used to reject a count before anything is allocated for it: a
// string is at least its u32 length; a hyperparameter is two strings; a tensor is a name,
// a role byte, a u32 rank, one i64 dimension and one float, and a tensor spec in a manifest
// the same without the float; a manifest's shard entry is a name, a u64 size and a u32 CRC.
inline constexpr uint64_t kMinStringBytes = 4;
inline constexpr uint64_t kMinHyperparameterBytes = 2 * kMinStringBytes;
inline constexpr uint64_t kMinSpecBytes = kMinStringBytes + 1 + 4 + 8;
inline constexpr uint64_t kMinTensorBytes = kMinSpecBytes + 4;
inline constexpr uint64_t kMinShardEntryBytes = kMinStringBytes + 8 + 4;

}  // namespace mrtrain::runtime::checkpoint_format
