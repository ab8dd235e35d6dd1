#include "runtime/protocol/frame.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "engine/base/check.h"
#include "engine/base/crc32c.h"

namespace mrtrain::runtime {
namespace {

void PutU16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>(v >> 8);
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Once this many consumed bytes sit at the front of the input buffer, drop them.
constexpr size_t kCompactBytes = 64 << 10;

}  // namespace

std::string EncodeFrameHeader(uint16_t type, size_t size, uint32_t crc32c) {
  MRTRAIN_CHECK(size <= std::numeric_limits<uint32_t>::max());
  std::string header(kFrameHeaderBytes, '\0');
  PutU32(&header[0], kFrameMagic);
  PutU16(&header[4], kProtocolVersion);
  PutU16(&header[6], type);
  PutU32(&header[8], static_cast<uint32_t>(size));
  PutU32(&header[12], crc32c);
  return header;
}

std::string EncodeFrameHeader(uint16_t type, std::string_view payload) {
  MRTRAIN_CHECK(payload.size() <= std::numeric_limits<uint32_t>::max());
  return EncodeFrameHeader(type, payload.size(), Crc32c(payload.data(), payload.size()));
}

std::string EncodeFrame(uint16_t type, std::string_view payload) {
  std::string frame = EncodeFrameHeader(type, payload);
  frame.append(payload.data(), payload.size());
  return frame;
}

FrameDecoder::FrameDecoder(uint32_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}

void FrameDecoder::Feed(std::string_view bytes) {
  if (!status_.ok()) return;
  // The common case for large payloads: the header is known and nothing else is buffered, so the
  // bytes go straight into the payload instead of through in_.
  if (have_header_ && pos_ == in_.size()) {
    size_t take = std::min<size_t>(bytes.size(), length_ - payload_.size());
    payload_.append(bytes.data(), take);
    bytes.remove_prefix(take);
  }
  in_.append(bytes.data(), bytes.size());
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  if (!status_.ok()) return status_;
  if (!have_header_) {
    if (in_.size() - pos_ < kFrameHeaderBytes) return std::optional<Frame>();
    status_ = ParseHeader();
    if (!status_.ok()) return status_;
  }
  size_t take = std::min<size_t>(in_.size() - pos_, length_ - payload_.size());
  payload_.append(in_.data() + pos_, take);
  pos_ += take;
  Compact();
  if (payload_.size() < length_) return std::optional<Frame>();

  uint32_t actual = Crc32c(payload_.data(), payload_.size());
  if (actual != crc_) {
    status_ = CorruptionError("frame checksum mismatch: header says CRC32C " + Hex32(crc_) +
                              ", payload of " + std::to_string(length_) + " bytes has " +
                              Hex32(actual) + " (type " + std::to_string(type_) + ")");
    return status_;
  }
  have_header_ = false;
  Frame frame{type_, std::move(payload_), crc_};
  payload_ = std::string();
  return std::optional<Frame>(std::move(frame));
}

Status FrameDecoder::ParseHeader() {
  const char* h = in_.data() + pos_;
  uint32_t magic = GetU32(h);
  uint16_t version = GetU16(h + 4);
  uint32_t length = GetU32(h + 8);
  if (magic != kFrameMagic) {
    return CorruptionError("bad frame magic " + Hex32(magic) + " (expected " + Hex32(kFrameMagic) +
                           ", \"MRTF\"): the peer does not speak mrtrain");
  }
  if (version != kProtocolVersion) {
    return CorruptionError("unsupported protocol version " + std::to_string(version) +
                           " (this build speaks version " + std::to_string(kProtocolVersion) +
                           "): run the same mrtrain release on every node");
  }
  if (length > max_payload_bytes_) {
    return CorruptionError("frame payload of " + std::to_string(length) +
                           " bytes is over the limit of " + std::to_string(max_payload_bytes_) +
                           " bytes");
  }
  type_ = GetU16(h + 6);
  length_ = length;
  crc_ = GetU32(h + 12);
  pos_ += kFrameHeaderBytes;
  have_header_ = true;
  payload_.clear();
  payload_.reserve(length_);
  return Status::Ok();
}

void FrameDecoder::Compact() {
  if (pos_ == in_.size()) {
    // Drop a large buffer outright rather than keep its capacity for the connection's life.
    if (in_.capacity() > kCompactBytes) {
      std::string().swap(in_);
    } else {
      in_.clear();
    }
    pos_ = 0;
  } else if (pos_ >= kCompactBytes) {
    in_.erase(0, pos_);
    pos_ = 0;
  }
}

}  // namespace mrtrain::runtime
