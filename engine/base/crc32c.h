#pragma once

#include <cstddef>
#include <cstdint>

namespace mrtrain {

// CRC32C (Castagnoli), as used by checkpoints, spill runs and wire frames. `Extend` continues
// a checksum over more bytes: Crc32c(ab) == Crc32cExtend(Crc32c(a), b).
uint32_t Crc32c(const void* data, size_t n);
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

}  // namespace mrtrain
