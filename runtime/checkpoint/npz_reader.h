#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// One array of an .npz archive.
struct NpyArray {
  std::string name;            // the member name without ".npy"
  std::vector<int64_t> shape;  // empty for a scalar
  std::vector<float> data;     // row-major, prod(shape) floats
};

// Reads every member of a float32 .npz, as WriteNpz (or np.savez with float32 arrays)
// writes it, in archive order. Lengths are checked before allocating: a member's declared
// size must agree with its NPY header and be one its compressed bytes could hold, and libzip
// checks each member's CRC-32. Fails with kNotFound when `path` does not exist, kIOError
// when it cannot be read, kCorruption naming the file and member for a damaged archive or
// header, a dtype other than '<f4', or Fortran order.
Result<std::vector<NpyArray>> ReadNpz(const std::string& path);

}  // namespace mrtrain::runtime
