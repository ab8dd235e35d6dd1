#pragma once

#include <cstdint>
#include <string>

#include "runtime/checkpoint/checkpoint.h"

namespace mrtrain::testing {

// A small but complete checkpoint: an MLP with W1[32x32] (4096 bytes), b1[32], W2[32x3],
// b2[3], block_size 100, two slots (Adam's m and v), hyperparameters and a sparse data shape.
// Floats follow a pattern keyed by `seed` and include -0.0, infinities, a subnormal and NaNs
// with payloads, so that only a byte-exact round trip compares equal.
runtime::Checkpoint SampleCheckpoint(int64_t epochs_done, uint32_t seed = 1);

// True when a and b agree in every field, floats compared by their bytes. Names the first
// difference in `why` otherwise.
bool SameCheckpoint(const runtime::Checkpoint& a, const runtime::Checkpoint& b, std::string* why);

// Writes the `n` low bytes of `v` little-endian at `at`.
void PutLittleEndian(std::string* bytes, size_t at, uint64_t v, int n);

// Recomputes total_length and the CRC of checkpoint file bytes after an edit, so that the
// edit looks like what a writer produced.
void Reseal(std::string* bytes);

}  // namespace mrtrain::testing
