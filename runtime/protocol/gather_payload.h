#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mrtrain::runtime {

// A message payload to send as it lies in memory: encoded fields (`head`) followed by a block
// that stays where it is (`tail`: a run's floats, kept alive by `owner`). The TCP transport
// writes frame header, head and tail with one gather write, so a model-sized block is never
// copied into an encoded string first. The bytes are exactly those of the message's one-string
// encoding (messages.h).
struct GatherPayload {
  GatherPayload() = default;
  // A payload that is all head (an encoded message, or kept bytes read back).
  explicit GatherPayload(std::string bytes) : head(std::move(bytes)) {}

  std::string head;
  std::shared_ptr<const void> owner;  // owns tail's memory until the payload is destroyed
  std::string_view tail;
  // CRC32C of `tail` when its producer already holds it (PushRun::values_crc32c): the frame's
  // checksum is then combined from it (Crc32cCombine) instead of reading the tail again.
  std::optional<uint32_t> tail_crc32c;
  // The message these bytes encode (EncodeGather's PushRun), which a transport within one
  // process may hand over instead of the bytes (ConnectionHandler::takes_messages). Never
  // changed while shared: a receiver that is its last owner may move out of it.
  std::shared_ptr<const void> message;

  size_t size() const { return head.size() + tail.size(); }
  // The CRC32C of head and tail, reading only what tail_crc32c does not cover.
  uint32_t Crc32c() const;
  // Head and tail in one string: for a transport that hands over one buffer, and for tests.
  std::string Join() const;
};

// The same bytes, however they are cut.
bool operator==(const GatherPayload& a, const GatherPayload& b);
inline bool operator!=(const GatherPayload& a, const GatherPayload& b) { return !(a == b); }

}  // namespace mrtrain::runtime
