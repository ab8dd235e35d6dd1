#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/status.h"
#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::runtime {

// One frame of the wire protocol: a message type and its payload (FORMAT.md).
struct Frame {
  uint16_t type = 0;
  std::string payload;
  uint32_t crc32c = 0;  // the payload's, from the header: FrameDecoder has checked it
};

// The 16-byte header of a frame carrying `payload`: magic, kProtocolVersion, type, length and
// the CRC32C of the payload. Writers that already own the payload send this header and the
// payload as two buffers instead of copying them into one string.
// REQUIRES: payload.size() <= UINT32_MAX (callers check their configured limit first).
std::string EncodeFrameHeader(uint16_t type, std::string_view payload);
// The same for a payload of `size` bytes whose CRC32C the caller has (a GatherPayload's).
// REQUIRES: size <= UINT32_MAX.
std::string EncodeFrameHeader(uint16_t type, size_t size, uint32_t crc32c);

// A whole frame: EncodeFrameHeader(type, payload) followed by the payload.
// REQUIRES: payload.size() <= UINT32_MAX.
std::string EncodeFrame(uint16_t type, std::string_view payload);

// Splits a byte stream into frames, however the bytes arrive (a byte at a time or many frames
// at once). Headers are parsed lazily by Next(), so a caller may raise the payload limit after
// the frame that authenticates a peer and the next frame is already checked against the new one.
//
// Rejections (kCorruption, the message says which): a bad magic, an unsupported version, a
// length over the limit (checked from the 16 header bytes, before anything is allocated for
// the payload) and a CRC mismatch. After a rejection the decoder is dead: Next() returns the same
// error forever and Feed() ignores its input; the stream cannot be resynchronised, so the
// connection must close.
//
// Memory: the decoder holds at most the bytes fed and not yet returned, plus the payload of the
// frame being assembled (reserved once its header has passed the checks).
//
// Thread-compatible: one owner at a time.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_payload_bytes = kDefaultMaxFramePayloadBytes);

  // Appends bytes received from the stream. Call Next() until it yields nothing before
  // feeding more, or the decoder buffers without bound.
  void Feed(std::string_view bytes);

  // Returns the next complete frame, std::nullopt when more bytes are needed, or kCorruption.
  Result<std::optional<Frame>> Next();

  // Applies to headers not yet parsed (the frame in progress keeps the limit it passed).
  void set_max_payload_bytes(uint32_t max_payload_bytes) { max_payload_bytes_ = max_payload_bytes; }
  uint32_t max_payload_bytes() const { return max_payload_bytes_; }

  // The error that killed the decoder, or OK.
  const Status& status() const { return status_; }
  // Bytes fed but not yet returned in a frame, headers included.
  size_t buffered_bytes() const {
    return (in_.size() - pos_) + (have_header_ ? kFrameHeaderBytes + payload_.size() : 0);
  }
  // Bytes the decoder has allocated (buffer capacities), for memory accounting.
  size_t reserved_bytes() const { return in_.capacity() + payload_.capacity(); }
  // True between frames: no partial header or payload is held.
  bool at_frame_boundary() const { return !have_header_ && in_.size() == pos_; }

 private:
  Status ParseHeader();
  void Compact();

  uint32_t max_payload_bytes_;
  Status status_;
  std::string in_;  // fed bytes not yet consumed, from in_[pos_]
  size_t pos_ = 0;
  bool have_header_ = false;
  uint16_t type_ = 0;
  uint32_t length_ = 0;
  uint32_t crc_ = 0;
  std::string payload_;  // the payload being assembled once its header has been parsed
};

}  // namespace mrtrain::runtime
