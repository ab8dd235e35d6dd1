#include "tools/faultproxy/frame_rewriter.h"

#include <cstdint>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::tools {
namespace {

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A frame per runtime/protocol/FORMAT.md with a zero CRC (the rewriter checks only the magic).
std::string Frame(uint16_t type, const std::string& payload) {
  std::string frame;
  PutLe(&frame, runtime::kFrameMagic, 4);
  PutLe(&frame, runtime::kProtocolVersion, 2);
  PutLe(&frame, type, 2);
  PutLe(&frame, payload.size(), 4);
  PutLe(&frame, 0, 4);
  return frame + payload;
}

// Feeds `in` one byte at a time, as the slowest network would deliver it.
std::string ByteByByte(FrameRewriter* rewriter, const std::string& in, FrameFault fault,
                       std::optional<uint64_t> index = std::nullopt) {
  std::string out;
  for (char c : in) rewriter->Process(std::string_view(&c, 1), fault, index, &out);
  return out;
}

const std::string kA = Frame(16, "alpha"), kB = Frame(17, ""), kC = Frame(18, std::string(70, 'c'));

TEST_CASE("rewriter output does not depend on how the bytes are split", "[tools]") {
  for (FrameFault fault : {FrameFault::kNone, FrameFault::kDuplicate, FrameFault::kReorder}) {
    FrameRewriter whole, bytewise;
    std::string out;
    whole.Process(kA + kB + kC + kA, fault, std::nullopt, &out);
    CHECK(ByteByByte(&bytewise, kA + kB + kC + kA, fault) == out);
    CHECK(whole.frames_completed() == 4);
    CHECK(bytewise.frames_completed() == 4);
  }
}

TEST_CASE("rewriter duplicates and reorders whole frames, including empty payloads", "[tools]") {
  FrameRewriter rewriter;
  SECTION("duplicate every frame") {
    CHECK(ByteByByte(&rewriter, kA + kB + kC, FrameFault::kDuplicate) ==
          kA + kA + kB + kB + kC + kC);
    CHECK(rewriter.frames_duplicated() == 3);
  }
  SECTION("reorder every pair; an odd frame waits for its partner") {
    CHECK(ByteByByte(&rewriter, kA + kB + kC, FrameFault::kReorder) == kB + kA);
    CHECK(rewriter.frame_pairs_reordered() == 1);
    std::string out;
    rewriter.Release(FrameFault::kNone, &out);
    CHECK(out == kC);
  }
}

TEST_CASE("rewriter counts frame indexes from the start of the stream", "[tools]") {
  FrameRewriter rewriter;
  std::string out;
  rewriter.Process(kA, FrameFault::kNone, std::nullopt, &out);  // frame 0 before the fault
  rewriter.Process(kB + kC + kA, FrameFault::kDuplicate, 2, &out);
  CHECK(out == kA + kB + kC + kC + kA);
}

TEST_CASE("rewriter passes a partial header through at once when no fault holds frames",
          "[tools]") {
  FrameRewriter rewriter;
  std::string out;
  rewriter.Process(kA.substr(0, 3), FrameFault::kNone, std::nullopt, &out);
  CHECK(out == kA.substr(0, 3));
  CHECK(rewriter.in_sync());
}

TEST_CASE("rewriter falls back to pass-through at the first byte that is not a header", "[tools]") {
  FrameRewriter rewriter;
  std::string out;
  SECTION("at a frame boundary, with a frame held") {
    rewriter.Process(kA + "GET /", FrameFault::kReorder, std::nullopt, &out);
    CHECK(out == kA + "GET /");  // the held frame first, then the stream unchanged
  }
  SECTION("inside a header that is being held") {
    std::string bad = kB.substr(0, 2) + "Z and more";  // "MR" then not "T"
    rewriter.Process(kA + bad, FrameFault::kDuplicate, std::nullopt, &out);
    CHECK(out == kA + kA + bad);
  }
  CHECK_FALSE(rewriter.in_sync());
  std::string before = out;
  rewriter.Process(kB + kB, FrameFault::kDuplicate, std::nullopt, &out);
  CHECK(out == before + kB + kB);  // frames are never parsed again on this stream
}

TEST_CASE("rewriter releases held frames when the fault changes", "[tools]") {
  FrameRewriter rewriter;
  std::string out;
  rewriter.Process(kA + kB.substr(0, 5), FrameFault::kReorder, std::nullopt, &out);
  CHECK(out.empty());
  rewriter.Release(FrameFault::kDuplicate, &out);  // duplicate keeps B's partial frame, not A
  CHECK(out == kA);
  rewriter.Process(kB.substr(5), FrameFault::kDuplicate, std::nullopt, &out);
  CHECK(out == kA + kB + kB);
  rewriter.Process(kC.substr(0, 20), FrameFault::kNone, std::nullopt, &out);
  CHECK(out == kA + kB + kB + kC.substr(0, 20));  // under kNone bytes stream at once
}

}  // namespace
}  // namespace mrtrain::tools
