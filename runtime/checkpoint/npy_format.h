#pragma once

// Private to the .npz writer and reader: NumPy's .npy array format (numpy/lib/format.py),
// restricted to what the engine stores, float32 little-endian in C order.
//
//   npy    := magic major:u8 minor:u8 header_len:(u16 | u32) dict data
//   magic  := "\x93NUMPY"
//   dict   := Python literal "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
//             padded with spaces and ending in '\n' so that the data start at a multiple of
//             64 bytes; header_len is u16 in version 1.0, u32 in 2.0 and 3.0
//   data   := prod(shape) floats, row-major

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::runtime {

inline constexpr char kNpyMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
inline constexpr size_t kNpyMagicSize = sizeof(kNpyMagic);
// Where numpy aligns the data, so a memory-mapped array is aligned for any dtype.
inline constexpr size_t kNpyAlignment = 64;

// Magic through the final '\n' of a version 1.0 header for a '<f4' C-order array of
// `shape`; its size is a multiple of kNpyAlignment. kInvalidArgument when the dict would not
// fit version 1.0's 16-bit length (a rank in the thousands).
Result<std::string> NpyHeaderF32(const std::vector<int64_t>& shape);
// The same for dtype `descr`, e.g. "<i8" for the ids of a row-sparse tensor.
Result<std::string> NpyHeaderOf(const std::string& descr, const std::vector<int64_t>& shape);

struct NpyHeader {
  std::vector<int64_t> shape;
  uint64_t num_elements = 0;  // the product of shape (1 for a scalar)
  size_t header_size = 0;     // bytes before the data
};

// Parses the header at the start of `bytes` (size `n`, which may run past the header).
// Accepts versions 1.0, 2.0 and 3.0 with descr '<f4' and fortran_order False. Every length
// is checked against `n`. kCorruption prefixed with `name` on anything else.
Result<NpyHeader> ParseNpyHeaderF32(const uint8_t* bytes, size_t n, const std::string& name);

}  // namespace mrtrain::runtime
