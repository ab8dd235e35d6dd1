#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mrtrain::data {

// The feature hashing of FORMAT.md ("Feature hashing"): 64-bit FNV-1a (offset basis
// 0xcbf29ce484222325, prime 0x100000001b3) over a key's bytes, the bucket being its low
// hash_bits bits. Written out here rather than taken from std::hash, whose values differ
// between standard libraries: a model trained on one machine must read the same ids on another.
uint64_t Fnv1a64(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ull);

// A criteo field's key: the field's 1-based column (1-39) as 4 little-endian bytes, then the
// token's bytes.
uint64_t HashCriteoToken(uint32_t column, std::string_view token);

// The integer and categorical columns of a criteo line, after its label: columns 1-13 and 14-39.
inline constexpr int kCriteoIntColumns = 13;
inline constexpr int kCriteoCatColumns = 26;

// The token a present criteo integer field hashes as: "S<v>" for v <= 2, "L<floor(ln(v)^2)>"
// above.
std::string CriteoIntToken(int64_t v);

// A libsvm feature's key: its index as written in the file, as 8 little-endian bytes.
uint64_t HashLibsvmIndex(uint64_t index);

inline uint32_t HashBucket(uint64_t hash, int hash_bits) {
  return static_cast<uint32_t>(hash & ((uint64_t{1} << hash_bits) - 1));
}

// Sorts the columns of the sparse row that starts at cols[begin], summing the values of equal
// columns (two keys hashed into one bucket), so rows keep strictly increasing columns.
void SortAndMergeRow(size_t begin, std::vector<uint32_t>* cols, std::vector<float>* values);

}  // namespace mrtrain::data
