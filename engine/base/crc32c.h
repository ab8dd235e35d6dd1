#pragma once

#include <cstddef>
#include <cstdint>

namespace mrtrain {

// CRC32C (Castagnoli), as used by checkpoints, spill runs and wire frames. `Extend` continues
// a checksum over more bytes: Crc32c(ab) == Crc32cExtend(Crc32c(a), b).
uint32_t Crc32c(const void* data, size_t n);
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

// The checksum of ab from those of a and b, without reading the bytes (O(log n) work):
// Crc32cCombine(Crc32c(a), Crc32c(b), size of b) == Crc32c(ab). The map is linear in its first
// argument, so it also splits a checksum: Crc32c(b) == Crc32c(ab) ^ Crc32cCombine(Crc32c(a), 0,
// size of b). A frame's checksum is thus combined from the checksum its sender already holds
// for a block of floats, and a receiver checks that block's from the frame's, each byte read
// once.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);

}  // namespace mrtrain
