#include "engine/base/crc32c.h"

#include <boost/crc.hpp>

namespace mrtrain {
namespace {
// Boost.CRC's table-driven engine with the Castagnoli polynomial (reflected, as in iSCSI).
using Crc32cEngine = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;
}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n) {
  // Continue from a finished checksum: undo the final xor, and since Boost keeps the register
  // of a reflected CRC bit-reversed, hand it the reversed value.
  uint32_t reg = crc ^ 0xFFFFFFFF, reversed = 0;
  for (int i = 0; i < 32; ++i, reg >>= 1) reversed = (reversed << 1) | (reg & 1);
  Crc32cEngine engine(reversed);
  engine.process_bytes(data, n);
  return engine.checksum();
}

uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

}  // namespace mrtrain
