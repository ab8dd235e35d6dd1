#include "runtime/protocol/frame.h"

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "test/runtime/protocol/allocation_tracker.h"

namespace mrtrain::runtime {
namespace {

// Feeds `bytes` in pieces of `piece` bytes and collects every frame; stops at the first error.
Status DecodeAll(FrameDecoder& decoder, const std::string& bytes, size_t piece,
                 std::vector<Frame>* frames) {
  for (size_t at = 0; at < bytes.size(); at += piece) {
    decoder.Feed(std::string_view(bytes).substr(at, piece));
    for (;;) {
      Result<std::optional<Frame>> next = decoder.Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      frames->push_back(std::move(**next));
    }
  }
  return Status::Ok();
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

void PutU32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST_CASE("frame header is 16 little-endian bytes: MRTF, version, type, length, crc32c",
          "[runtime][protocol]") {
  const std::string payload = "hello";
  std::string frame = EncodeFrame(0x1234, payload);
  REQUIRE(frame.size() == kFrameHeaderBytes + payload.size());
  CHECK(frame.substr(0, 4) == "MRTF");
  CHECK(static_cast<uint8_t>(frame[4]) == kProtocolVersion);
  CHECK(frame[5] == 0);
  CHECK(static_cast<uint8_t>(frame[6]) == 0x34);
  CHECK(static_cast<uint8_t>(frame[7]) == 0x12);
  CHECK(static_cast<uint8_t>(frame[8]) == 5);
  uint32_t crc = Crc32c(payload.data(), payload.size());
  uint32_t wire = 0;
  for (int i = 3; i >= 0; --i) wire = (wire << 8) | static_cast<uint8_t>(frame[12 + i]);
  CHECK(wire == crc);
  CHECK(frame.substr(16) == payload);
  CHECK(EncodeFrameHeader(0x1234, payload) == frame.substr(0, 16));
}

TEST_CASE("frames round trip however the bytes are split", "[runtime][protocol]") {
  std::vector<std::string> payloads = {"", "a", Pattern(100), Pattern(70000), ""};
  std::string stream;
  for (size_t i = 0; i < payloads.size(); ++i) {
    stream += EncodeFrame(static_cast<uint16_t>(16 + i), payloads[i]);
  }
  size_t piece = GENERATE(1, 7, 16, 17, 4096, 1u << 20);
  FrameDecoder decoder;
  std::vector<Frame> frames;
  REQUIRE(DecodeAll(decoder, stream, piece, &frames).ok());
  REQUIRE(frames.size() == payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    CHECK(frames[i].type == 16 + i);
    CHECK(frames[i].payload == payloads[i]);
  }
  CHECK(decoder.at_frame_boundary());
  CHECK(decoder.buffered_bytes() == 0);
}

TEST_CASE("a truncated frame yields nothing until its last byte arrives", "[runtime][protocol]") {
  std::string frame = EncodeFrame(20, Pattern(1000));
  FrameDecoder decoder;
  decoder.Feed(std::string_view(frame).substr(0, frame.size() - 1));
  auto next = decoder.Next();
  REQUIRE(next.ok());
  CHECK_FALSE(next->has_value());
  CHECK_FALSE(decoder.at_frame_boundary());
  CHECK(decoder.buffered_bytes() == frame.size() - 1);
  decoder.Feed(std::string_view(frame).substr(frame.size() - 1));
  next = decoder.Next();
  REQUIRE(next.ok());
  REQUIRE(next->has_value());
  CHECK((*next)->payload == Pattern(1000));
}

TEST_CASE("decoder rejects a bad magic and stays dead", "[runtime][protocol]") {
  std::string frame = EncodeFrame(16, "x");
  frame[0] = 'G';  // "GET / HTTP/1.1" and friends
  FrameDecoder decoder;
  std::vector<Frame> frames;
  Status s = DecodeAll(decoder, frame, frame.size(), &frames);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains("magic"));
  // A good frame afterwards does not revive it: the stream cannot be resynchronised.
  decoder.Feed(EncodeFrame(16, "y"));
  CHECK(decoder.Next().status().code() == StatusCode::kCorruption);
  CHECK(decoder.status().code() == StatusCode::kCorruption);
}

TEST_CASE("decoder rejects another protocol version", "[runtime][protocol]") {
  std::string frame = EncodeFrame(16, "x");
  frame[4] = static_cast<char>(kProtocolVersion + 1);
  FrameDecoder decoder;
  std::vector<Frame> frames;
  Status s = DecodeAll(decoder, frame, 1, &frames);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains("this build speaks version 4"));
  CHECK(frames.empty());
}

TEST_CASE("decoder rejects a length over its limit from the header, allocating nothing",
          "[runtime][protocol]") {
  SECTION("configured limit") {
    std::string header = EncodeFrameHeader(16, "");
    PutU32(&header, 8, 1u << 20);
    FrameDecoder decoder(1024);
    decoder.Feed(header);
    testing::AllocationTracker tracker;
    Status s = decoder.Next().status();
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("1048576") && Catch::Contains("limit of 1024"));
    CHECK(tracker.largest_request() < 4096);
  }
  SECTION("default limit of 256 MiB, 4 GiB claimed") {
    std::string header = EncodeFrameHeader(16, "");
    PutU32(&header, 8, 0xFFFFFFFFu);
    FrameDecoder decoder;
    testing::AllocationTracker tracker;
    decoder.Feed(header);
    CHECK(decoder.Next().status().code() == StatusCode::kCorruption);
    CHECK(tracker.largest_request() < 4096);
  }
  SECTION("exactly at the limit is fine") {
    FrameDecoder decoder(10);
    decoder.Feed(EncodeFrame(16, "0123456789"));
    auto next = decoder.Next();
    REQUIRE(next.ok());
    CHECK(next->has_value());
  }
}

TEST_CASE("decoder rejects a checksum mismatch", "[runtime][protocol]") {
  std::string frame = EncodeFrame(16, Pattern(300));
  frame[16 + 150] ^= 0x01;
  FrameDecoder decoder;
  std::vector<Frame> frames;
  Status s = DecodeAll(decoder, frame, 1, &frames);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains("checksum"));
  CHECK(frames.empty());
}

TEST_CASE("a raised limit applies to the next header, even one already buffered",
          "[runtime][protocol]") {
  // The handshake case: the frame that authenticates the peer and a big frame arrive together.
  std::string stream = EncodeFrame(4, "") + EncodeFrame(64, Pattern(5000));
  FrameDecoder decoder(1024);
  decoder.Feed(stream);
  auto first = decoder.Next();
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->type == 4);
  decoder.set_max_payload_bytes(1 << 20);
  auto second = decoder.Next();
  REQUIRE(second.ok());
  REQUIRE(second->has_value());
  CHECK((*second)->payload == Pattern(5000));
}

}  // namespace
}  // namespace mrtrain::runtime
