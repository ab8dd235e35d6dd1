#pragma once

#include <string>

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

}  // namespace mrtrain::runtime
