#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::tools {

// What to do to whole frames (runtime/protocol/FORMAT.md) in one direction of a connection.
enum class FrameFault {
  kNone,       // pass bytes through as they come
  kDuplicate,  // send a whole frame twice
  kReorder,    // send the second frame of a pair before the first
};

// Follows the frames of one byte stream, however the bytes arrive, and rewrites whole frames
// for the fault in force: a frame is held while it is incomplete, then sent twice, or kept back
// until the next frame is complete and then sent after it.
//
//   stream   A    B    C    D          (frame indexes 0 1 2 3 in this direction)
//   kDuplicate, every frame   -> A A B B C C D D
//   kDuplicate, frame 1       -> A B B C D
//   kReorder, every pair      -> B A D C   (pairs counted from the first frame held)
//   kReorder, pair at 1       -> A C B D
//
// Frame indexes count every frame since the stream began, whatever the fault was at the time;
// for the client side of an mrtrain connection, frame 0 is the HandshakeHello. Whether a frame
// is held is decided by the fault in force when its first byte arrives; a frame already partly
// sent passes through unchanged. Only the magic is checked (not version, length limit or CRC):
// the first byte that cannot start a header ends frame tracking for good, and from then on the
// stream passes through unchanged, held bytes first.
//
// Memory: at most two frames are held; a frame with a payload over
// kDefaultMaxFramePayloadBytes is never held (it passes through unchanged).
//
// Thread-compatible: one owner at a time.
class FrameRewriter {
 public:
  // Appends to *out the bytes to forward now: `in` rewritten for `fault`, after any held
  // bytes that `fault` no longer holds (see Release). `frame_index` names the one frame
  // (kDuplicate) or the first frame of the one pair (kReorder) to fault; nullopt means all.
  void Process(std::string_view in, FrameFault fault, std::optional<uint64_t> frame_index,
               std::string* out);

  // Appends to *out, in stream order, the held bytes that `fault` does not keep: everything
  // for kNone; the first frame of an unfinished pair for kDuplicate; nothing for kReorder.
  void Release(FrameFault fault, std::string* out);

  // False once a byte that cannot be a frame header was met.
  bool in_sync() const { return !desynced_; }
  uint64_t frames_completed() const { return frames_completed_; }
  uint64_t frames_duplicated() const { return frames_duplicated_; }
  uint64_t frame_pairs_reordered() const { return frame_pairs_reordered_; }

 private:
  bool WantsHold(FrameFault fault, std::optional<uint64_t> frame_index) const;
  bool MatchesMagic(std::string_view header_bytes) const;
  void Emit(std::string_view bytes, std::string* out);
  void FinishFrame(FrameFault fault, std::optional<uint64_t> frame_index, std::string* out);

  bool desynced_ = false;
  char header_[runtime::kFrameHeaderBytes] = {};
  size_t header_len_ = 0;                     // header bytes of the current frame seen so far
  uint64_t payload_left_ = 0;                 // once the header is complete
  bool holding_ = false;                      // the current frame goes to cur_, not out
  std::string cur_;                           // the held bytes of the current frame
  std::optional<std::string> first_of_pair_;  // kReorder: a whole frame waiting for the next
  uint64_t frames_completed_ = 0;
  uint64_t frames_duplicated_ = 0;
  uint64_t frame_pairs_reordered_ = 0;
};

}  // namespace mrtrain::tools
