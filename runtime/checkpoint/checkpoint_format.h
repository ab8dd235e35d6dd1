#pragma once

// Constants of the checkpoint file format. The grammar is in runtime/checkpoint/FORMAT.md;
// change both together, and bump kFormatVersion for any change a version-1 reader would
// misread.

#include <cstddef>
#include <cstdint>

namespace mrtrain::runtime::checkpoint_format {

// "MRTCKPT" and a NUL: eight bytes that no text file or other format of ours starts with.
inline constexpr char kMagic[8] = {'M', 'R', 'T', 'C', 'K', 'P', 'T', '\0'};
inline constexpr size_t kMagicSize = sizeof(kMagic);

// The version this build writes, and the newest it reads.
inline constexpr uint32_t kFormatVersion = 1;

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

// The smallest encodings, used to reject a count before anything is allocated for it: a
// string is at least its u32 length; a hyperparameter is two strings; a tensor is a name,
// a role byte, a u32 rank, one i64 dimension and one float.
inline constexpr uint64_t kMinStringBytes = 4;
inline constexpr uint64_t kMinHyperparameterBytes = 2 * kMinStringBytes;
inline constexpr uint64_t kMinTensorBytes = kMinStringBytes + 1 + 4 + 8 + 4;

}  // namespace mrtrain::runtime::checkpoint_format
