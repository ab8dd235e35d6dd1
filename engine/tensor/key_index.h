#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mrtrain {

// A hash index from 64-bit keys (packed ParamKeys) to non-negative int64 values the caller
// assigns (an offset into its own arrays, or an index): what the row-sparse paths look up for
// every row of every round, tens of thousands of times a round. std::unordered_map allocates a
// node per key and chases a pointer per lookup; this keeps (key, value) pairs in one flat array
// with linear probing, so a lookup is one hash and usually one cache line, and inserting
// allocates only when the table doubles. No erase: the users build a table, read it, and clear
// or drop it.
//
// Load stays at most 1/2, so a miss probes about 2.5 entries on average; 16 bytes an entry, 32
// to 64 bytes a key (std::unordered_map: about 48 plus the allocator's overhead). Not
// thread-safe to modify; const lookups may run concurrently.
class KeyIndex {
 public:
  static constexpr int64_t kAbsent = -1;

  // The value of `key`, kAbsent when it is not held.
  int64_t Find(uint64_t key) const {
    if (size_ == 0) return kAbsent;
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.value == kAbsent || e.key == key) return e.value;
    }
  }

  // The value of `key` and false when it is held; else holds it with `value` and returns
  // (value, true). REQUIRES: value >= 0.
  std::pair<int64_t, bool> FindOrInsert(uint64_t key, int64_t value) {
    if ((size_ + 1) * 2 > entries_.size()) Grow(size_ + 1);
    size_t i = Home(key);
    for (;; i = (i + 1) & mask_) {
      Entry& e = entries_[i];
      if (e.value == kAbsent) break;
      if (e.key == key) return {e.value, false};
    }
    entries_[i] = Entry{key, value};
    ++size_;
    return {value, true};
  }

  // Starts loading the entry where a lookup of `key` begins into the cache. A loop over many
  // keys in a large table (a shard's rows) hides most of its memory latency by prefetching a
  // few keys ahead.
  void Prefetch(uint64_t key) const {
    if (!entries_.empty()) __builtin_prefetch(&entries_[Home(key)]);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Makes room for `keys` keys without growing again.
  void Reserve(size_t keys) {
    if (keys * 2 > entries_.size()) Grow(keys);
  }

  // Forgets every key and keeps the memory (for a table refilled with about as many keys).
  void Clear() {
    if (size_ == 0) return;
    for (Entry& e : entries_) e.value = kAbsent;
    size_ = 0;
  }

 private:
  struct Entry {
    uint64_t key = 0;
    int64_t value = kAbsent;
  };

  // Fibonacci hashing: the top bits of key * 2^64/phi. Consecutive ids (a range partitioner's
  // shard) land far apart, and the partitioners' own hash (RandomStream::Mix modulo the shard
  // count) selects keys by other bits, so a shard's keys still fill the whole table.
  size_t Home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  // Rehashes into the smallest power-of-two table holding `keys` at load 1/2 (at least 16).
  void Grow(size_t keys) {
    size_t capacity = 16;
    int bits = 4;
    while (capacity < keys * 2) {
      capacity *= 2;
      ++bits;
    }
    std::vector<Entry> old;
    old.swap(entries_);
    entries_.assign(capacity, Entry{});
    mask_ = capacity - 1;
    shift_ = 64 - bits;
    for (const Entry& e : old) {
      if (e.value == kAbsent) continue;
      size_t i = Home(e.key);
      while (entries_[i].value != kAbsent) i = (i + 1) & mask_;
      entries_[i] = e;
    }
  }

  std::vector<Entry> entries_;
  size_t size_ = 0;
  size_t mask_ = 0;
  int shift_ = 64;
};

}  // namespace mrtrain
