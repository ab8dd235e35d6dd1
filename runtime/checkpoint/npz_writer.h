#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/model_state.h"

namespace mrtrain::runtime {

// Exports the parameters of `state` (not its slots) as a NumPy .npz archive, so that Python
// users load the model with one call: np.load(path)["W1"]. One uncompressed member
// "<tensor name>.npy" per tensor, in layout order: float32 little-endian ('<f4'), C order,
// the tensor's shape, NPY format version 1.0 with the data 64-byte aligned within the member.
// Member timestamps are fixed, so the same model always gives the same bytes.
//
// Written like a checkpoint: to "<path>.tmp.<pid>", fsynced and renamed over `path`, so a
// crash never leaves a partial archive under `path`. kIOError names the path and libzip's or
// the OS's reason; kInternal when the tensors do not match the layout (nothing is written).
Status WriteNpz(const std::string& path, const ModelState& state);

// One member of an archive: `name` ("W1.npy") holding `header` (npy_format.h) and then `bytes`
// bytes of data that `read` fetches while the archive is written.
struct NpzMember {
  std::string name;
  std::string header;
  uint64_t bytes = 0;
  // Copies data bytes [offset, offset + n) to `out`; the archive is written front to back, so
  // offsets ascend. An error stops the archive and is what WriteNpzMembers returns.
  std::function<Status(uint64_t offset, void* out, size_t n)> read;
};

// Writes `members`, in order, as WriteNpz writes a state's: the same bytes for the same
// members, atomically, with libzip pulling each member's data through `read` in pieces so that
// no member is ever whole in memory. Errors as WriteNpz's, or the first error of a `read`.
Status WriteNpzMembers(const std::string& path, const std::vector<NpzMember>& members);

}  // namespace mrtrain::runtime
