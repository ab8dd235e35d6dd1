#pragma once

#include <cstdint>
#include <functional>

namespace mrtrain {

// ParamKey names one block of one tensor: the tensor's index in the model (16 bits) and the
// block's index within the tensor (48 bits), packed so that sorting keys sorts by tensor, then
// block. A block is the unit of shuffle, reducer ownership and checkpointing.
class ParamKey {
 public:
  static constexpr int kBlockBits = 48;
  static constexpr uint64_t kMaxTensors = 1ULL << 16;
  static constexpr uint64_t kMaxBlocks = 1ULL << kBlockBits;

  constexpr ParamKey() = default;
  constexpr ParamKey(uint32_t tensor, uint64_t block)
      : packed_((static_cast<uint64_t>(tensor) << kBlockBits) | (block & (kMaxBlocks - 1))) {}

  static constexpr ParamKey FromPacked(uint64_t packed) {
    ParamKey k;
    k.packed_ = packed;
    return k;
  }

  constexpr uint32_t tensor() const { return static_cast<uint32_t>(packed_ >> kBlockBits); }
  constexpr uint64_t block() const { return packed_ & (kMaxBlocks - 1); }
  constexpr uint64_t packed() const { return packed_; }

  friend constexpr bool operator==(ParamKey a, ParamKey b) { return a.packed_ == b.packed_; }
  friend constexpr bool operator!=(ParamKey a, ParamKey b) { return a.packed_ != b.packed_; }
  friend constexpr bool operator<(ParamKey a, ParamKey b) { return a.packed_ < b.packed_; }

 private:
  uint64_t packed_ = 0;
};

}  // namespace mrtrain

template <>
struct std::hash<mrtrain::ParamKey> {
  size_t operator()(mrtrain::ParamKey k) const noexcept {
    return std::hash<uint64_t>()(k.packed());
  }
};
