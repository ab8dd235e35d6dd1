// libFuzzer target for the frame decoder (runtime/protocol/frame.cc) and the handshake state
// machine it feeds (runtime/protocol/handshake.cc): the bytes an unauthenticated peer controls.
//
// Input: one flags byte, then the byte stream as it would arrive on a connection. Flags:
//   bits 0-1   how the stream is fed: 1, 7 or 64 bytes at a time, or all at once
//   bit 2      payload limit 1 KiB (the pre-handshake limit) instead of 1 MiB
//   bit 3      the server handshake has a secret (else insecure, so it can finish)
//
// Checks: fed in pieces or at once, the decoder yields the same frames and the same verdict;
// every frame re-encodes and decodes to itself; no frame is over the limit; the decoder stays
// dead after an error; the handshake never crashes on any frame sequence.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/check.h"
#include "engine/base/status.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/handshake.h"

namespace {

using mrtrain::runtime::Frame;
using mrtrain::runtime::FrameDecoder;

// Decodes `stream` fed `piece` bytes at a time (0: all at once); returns the final status.
mrtrain::Status DecodeStream(std::string_view stream, size_t piece, uint32_t limit,
                             std::vector<Frame>* frames) {
  FrameDecoder decoder(limit);
  if (piece == 0) piece = stream.size() + 1;
  for (size_t at = 0; at < stream.size(); at += piece) {
    decoder.Feed(stream.substr(at, piece));
    for (;;) {
      auto next = decoder.Next();
      if (!next.ok()) {
        // Dead for good: more bytes change nothing.
        decoder.Feed(stream);
        MRTRAIN_CHECK(decoder.Next().status().code() == next.status().code());
        return next.status();
      }
      if (!next->has_value()) break;
      MRTRAIN_CHECK((*next)->payload.size() <= limit);
      frames->push_back(std::move(**next));
    }
  }
  return mrtrain::Status::Ok();
}

bool SameFrames(const std::vector<Frame>& a, const std::vector<Frame>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].payload != b[i].payload) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  static const size_t kPieces[] = {1, 7, 64, 0};
  const size_t piece = kPieces[flags & 3];
  const uint32_t limit = (flags & 4) != 0 ? 1024 : 1 << 20;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<Frame> frames, whole;
  mrtrain::Status status = DecodeStream(stream, piece, limit, &frames);
  mrtrain::Status whole_status = DecodeStream(stream, 0, limit, &whole);
  MRTRAIN_CHECK(status.code() == whole_status.code());
  MRTRAIN_CHECK(SameFrames(frames, whole));

  std::string reencoded;
  for (const Frame& f : frames) reencoded += mrtrain::runtime::EncodeFrame(f.type, f.payload);
  std::vector<Frame> again;
  MRTRAIN_CHECK(DecodeStream(reencoded, 0, limit, &again).ok());
  MRTRAIN_CHECK(SameFrames(frames, again));

  mrtrain::runtime::HandshakeConfig config;
  if ((flags & 8) != 0) {
    config.secret = "fuzz secret";
  } else {
    config.insecure = true;
  }
  mrtrain::runtime::Handshake server(mrtrain::runtime::HandshakeRole::kServer, config);
  MRTRAIN_CHECK(server.Start().ok());
  for (const Frame& f : frames) {
    if (server.done()) break;
    if (!server.OnFrame(f.type, f.payload).ok()) break;
  }
  return 0;
}
