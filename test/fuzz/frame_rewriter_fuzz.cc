// libFuzzer target for the fault proxy's frame rewriter (tools/faultproxy/frame_rewriter.h): it
// follows mrtrain frames in whatever bytes a peer sends, in whatever pieces the network cuts.
//
// Input: a mode byte, an index byte, four piece bytes, then the byte stream. Mode:
//   bits 0-1   the fault for every piece: kNone, kDuplicate, kReorder; 3: each piece its own
//   bit 2      frame_index is the index byte (else nullopt: every frame or pair)
// Piece bytes, used in turn: bits 0-5 the piece's length (0 is an empty Process call), bits
// 6-7 its fault (modulo 3) when the mode says so. Four zero lengths feed the stream at once.
//
// Checks, after every piece: the rewriter holds no more than it was given, and what it sent
// plus what it holds is the stream with whole frames added (only when it duplicated some). At
// the end: kNone sends the stream unchanged; a fault that never changes gives the output and
// counters of a model that splits the whole stream into frames first, and the same output
// fed at once; with nothing duplicated or reordered, the stream comes out unchanged.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/check.h"
#include "runtime/protocol/protocol_constants.h"
#include "tools/faultproxy/frame_rewriter.h"

namespace {

using mrtrain::tools::FrameFault;
using mrtrain::tools::FrameRewriter;

constexpr size_t kPrefixBytes = 6;
constexpr FrameFault kFaults[] = {FrameFault::kNone, FrameFault::kDuplicate, FrameFault::kReorder};

uint32_t GetU32(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// The stream as FORMAT.md cuts it, checking only the magic as the rewriter does: its complete
// frames, then the rest (a frame cut short, or everything from the first byte that cannot
// start a header).
struct Frames {
  std::vector<std::string_view> frames;
  std::string_view rest;
  bool in_sync = true;
};

Frames Split(std::string_view stream) {
  constexpr uint32_t kMagic = mrtrain::runtime::kFrameMagic;
  constexpr size_t kHeader = mrtrain::runtime::kFrameHeaderBytes;
  Frames out;
  while (!stream.empty()) {
    for (size_t i = 0; i < 4 && i < stream.size(); ++i) {
      if (static_cast<uint8_t>(stream[i]) != static_cast<uint8_t>(kMagic >> (8 * i))) {
        out.in_sync = false;
        out.rest = stream;
        return out;
      }
    }
    if (stream.size() < kHeader || GetU32(stream.substr(8)) > stream.size() - kHeader) break;
    const size_t n = kHeader + GetU32(stream.substr(8));
    out.frames.push_back(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  out.rest = stream;
  return out;
}

struct Expected {
  std::string bytes;
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
};

// What the header comment promises for one fault in force from the first byte to the last,
// once Release(kNone) has sent what was held.
Expected Model(const Frames& split, FrameFault fault, std::optional<uint64_t> index) {
  Expected out;
  std::optional<std::string_view> first_of_pair;
  for (uint64_t i = 0; i < split.frames.size(); ++i) {
    const std::string_view frame = split.frames[i];
    const bool picked = !index || *index == i;
    if (fault == FrameFault::kReorder && first_of_pair) {
      out.bytes.append(frame);
      out.bytes.append(*first_of_pair);
      first_of_pair.reset();
      ++out.reordered;
    } else if (fault == FrameFault::kReorder && picked) {
      first_of_pair = frame;
    } else {
      out.bytes.append(frame);
      if (fault == FrameFault::kDuplicate && picked) {
        out.bytes.append(frame);
        ++out.duplicated;
      }
    }
  }
  if (first_of_pair) out.bytes.append(*first_of_pair);  // no partner came: stream order
  out.bytes.append(split.rest);
  return out;
}

// The bytes `rewriter` holds back: what Release(kNone) would send now.
std::string Held(const FrameRewriter& rewriter) {
  FrameRewriter copy = rewriter;
  std::string held;
  copy.Release(FrameFault::kNone, &held);
  return held;
}

struct Run {
  std::string sent;  // before the final Release(kNone)
  std::string all;   // after it
  FrameRewriter rewriter;
};

// Feeds `stream` in pieces as the piece bytes say, checking the bounds after every piece.
Run Feed(std::string_view stream, const uint8_t* pieces, bool piece_faults, FrameFault fault,
         std::optional<uint64_t> index) {
  Run run;
  size_t fed = 0;
  const bool at_once = (pieces[0] | pieces[1] | pieces[2] | pieces[3]) % 64 == 0;
  for (size_t i = 0; fed < stream.size() || i == 0; ++i) {
    const uint8_t piece = pieces[i % 4];
    const size_t n = at_once ? stream.size() : std::min<size_t>(piece % 64, stream.size() - fed);
    const FrameFault f = piece_faults ? kFaults[(piece >> 6) % 3] : fault;
    run.rewriter.Process(stream.substr(fed, n), f, index, &run.sent);
    fed += n;
    const size_t held = Held(run.rewriter).size();
    MRTRAIN_CHECK(held <= fed);
    const size_t total = run.sent.size() + held;
    MRTRAIN_CHECK(run.rewriter.frames_duplicated() == 0 ? total == fed
                                                        : total > fed && total <= 2 * fed);
    if (f == FrameFault::kNone) MRTRAIN_CHECK(held == 0);
  }
  run.all = run.sent;
  run.rewriter.Release(FrameFault::kNone, &run.all);
  MRTRAIN_CHECK(Held(run.rewriter).empty());
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kPrefixBytes) return 0;
  const bool piece_faults = (data[0] & 3) == 3;
  const FrameFault fault = kFaults[(data[0] & 3) % 3];
  std::optional<uint64_t> index;
  if ((data[0] & 4) != 0) index = data[1];
  const uint8_t* pieces = data + 2;
  const std::string_view stream(reinterpret_cast<const char*>(data) + kPrefixBytes,
                                size - kPrefixBytes);

  Run run = Feed(stream, pieces, piece_faults, fault, index);
  const Frames split = Split(stream);
  MRTRAIN_CHECK(run.rewriter.in_sync() == split.in_sync);
  MRTRAIN_CHECK(run.rewriter.frames_completed() == split.frames.size());
  if (run.rewriter.frames_duplicated() == 0 && run.rewriter.frame_pairs_reordered() == 0) {
    MRTRAIN_CHECK(run.all == stream);
  }
  if (piece_faults) return 0;

  if (fault == FrameFault::kNone) MRTRAIN_CHECK(run.sent == stream);
  const Expected expected = Model(split, fault, index);
  MRTRAIN_CHECK(run.all == expected.bytes);
  MRTRAIN_CHECK(run.rewriter.frames_duplicated() == expected.duplicated);
  MRTRAIN_CHECK(run.rewriter.frame_pairs_reordered() == expected.reordered);

  const uint8_t at_once[4] = {};
  Run whole = Feed(stream, at_once, false, fault, index);
  MRTRAIN_CHECK(whole.sent == run.sent);
  return 0;
}
