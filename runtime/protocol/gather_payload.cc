#include "runtime/protocol/gather_payload.h"

#include "engine/base/crc32c.h"

namespace mrtrain::runtime {

uint32_t GatherPayload::Crc32c() const {
  const uint32_t head_crc = mrtrain::Crc32c(head.data(), head.size());
  if (tail_crc32c) return Crc32cCombine(head_crc, *tail_crc32c, tail.size());
  return Crc32cExtend(head_crc, tail.data(), tail.size());
}

std::string GatherPayload::Join() const {
  std::string bytes;
  bytes.reserve(size());
  bytes.append(head);
  bytes.append(tail.data(), tail.size());
  return bytes;
}

bool operator==(const GatherPayload& a, const GatherPayload& b) {
  return a.size() == b.size() && a.Join() == b.Join();
}

}  // namespace mrtrain::runtime
