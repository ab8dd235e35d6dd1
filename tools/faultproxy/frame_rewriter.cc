#include "tools/faultproxy/frame_rewriter.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace mrtrain::tools {
namespace {

// FORMAT.md: header := magic:u32 version:u16 type:u16 length:u32 crc:u32, little-endian.
constexpr size_t kMagicBytes = 4;
constexpr size_t kLengthOffset = 8;

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void FrameRewriter::Process(std::string_view in, FrameFault fault,
                            std::optional<uint64_t> frame_index, std::string* out) {
  Release(fault, out);
  while (!in.empty()) {
    if (desynced_) {
      out->append(in.data(), in.size());
      return;
    }
    if (header_len_ == 0) holding_ = WantsHold(fault, frame_index);
    if (header_len_ < runtime::kFrameHeaderBytes) {
      size_t n = std::min(runtime::kFrameHeaderBytes - header_len_, in.size());
      if (!MatchesMagic(in.substr(0, n))) {
        Release(FrameFault::kNone, out);
        desynced_ = true;
        continue;  // the rest of `in`, this header's bytes included, passes through
      }
      std::memcpy(header_ + header_len_, in.data(), n);
      Emit(in.substr(0, n), out);
      header_len_ += n;
      in.remove_prefix(n);
      if (header_len_ < runtime::kFrameHeaderBytes) return;  // `in` is used up
      payload_left_ = GetU32(header_ + kLengthOffset);
      if (payload_left_ > runtime::kDefaultMaxFramePayloadBytes) Release(FrameFault::kNone, out);
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(payload_left_, in.size()));
    Emit(in.substr(0, n), out);
    payload_left_ -= n;
    in.remove_prefix(n);
    if (payload_left_ == 0) FinishFrame(fault, frame_index, out);
  }
}

void FrameRewriter::Release(FrameFault fault, std::string* out) {
  if (fault != FrameFault::kReorder && first_of_pair_) {
    out->append(*first_of_pair_);
    first_of_pair_.reset();
  }
  if (fault == FrameFault::kNone && holding_) {
    out->append(cur_);
    cur_.clear();
    holding_ = false;  // the rest of the current frame streams through
  }
}

bool FrameRewriter::WantsHold(FrameFault fault, std::optional<uint64_t> frame_index) const {
  uint64_t index = frames_completed_;
  switch (fault) {
    case FrameFault::kNone:
      return false;
    case FrameFault::kDuplicate:
      return !frame_index || *frame_index == index;
    case FrameFault::kReorder:
      return first_of_pair_.has_value() || !frame_index || *frame_index == index;
  }
  return false;
}

bool FrameRewriter::MatchesMagic(std::string_view header_bytes) const {
  for (size_t i = 0; i < header_bytes.size() && header_len_ + i < kMagicBytes; ++i) {
    auto expected = static_cast<uint8_t>(runtime::kFrameMagic >> (8 * (header_len_ + i)));
    if (static_cast<uint8_t>(header_bytes[i]) != expected) return false;
  }
  return true;
}

void FrameRewriter::Emit(std::string_view bytes, std::string* out) {
  (holding_ ? cur_ : *out).append(bytes.data(), bytes.size());
}

void FrameRewriter::FinishFrame(FrameFault fault, std::optional<uint64_t> frame_index,
                                std::string* out) {
  uint64_t index = frames_completed_++;
  header_len_ = 0;
  if (!holding_) return;
  holding_ = false;
  std::string frame = std::move(cur_);
  cur_.clear();
  if (fault == FrameFault::kDuplicate && (!frame_index || *frame_index == index)) {
    out->append(frame);
    out->append(frame);
    ++frames_duplicated_;
  } else if (fault == FrameFault::kReorder && first_of_pair_) {
    out->append(frame);
    out->append(*first_of_pair_);
    first_of_pair_.reset();
    ++frame_pairs_reordered_;
  } else if (fault == FrameFault::kReorder && (!frame_index || *frame_index == index)) {
    first_of_pair_ = std::move(frame);
  } else {
    out->append(frame);
  }
}

}  // namespace mrtrain::tools
