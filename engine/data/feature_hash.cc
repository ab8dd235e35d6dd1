#include "engine/data/feature_hash.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace mrtrain::data {
namespace {

// Little-endian whatever the host: the bytes hashed are part of the format.
std::string_view LittleEndian(uint64_t v, int bytes, char* buffer) {
  for (int i = 0; i < bytes; ++i) buffer[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return std::string_view(buffer, bytes);
}

}  // namespace

uint64_t Fnv1a64(std::string_view bytes, uint64_t hash) {
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

uint64_t HashCriteoToken(uint32_t column, std::string_view token) {
  char buffer[4];
  return Fnv1a64(token, Fnv1a64(LittleEndian(column, 4, buffer)));
}

uint64_t HashLibsvmIndex(uint64_t index) {
  char buffer[8];
  return Fnv1a64(LittleEndian(index, 8, buffer));
}

void SortAndMergeRow(size_t begin, std::vector<uint32_t>* cols, std::vector<float>* values) {
  const size_t n = cols->size() - begin;
  if (n < 2) return;
  std::vector<std::pair<uint32_t, float>> row(n);
  for (size_t i = 0; i < n; ++i) row[i] = {(*cols)[begin + i], (*values)[begin + i]};
  // Stable, so equal columns sum in the order of the line: the same floats on every platform.
  std::stable_sort(row.begin(), row.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t out = begin;
  for (size_t i = 0; i < n; ++i) {
    if (out > begin && (*cols)[out - 1] == row[i].first) {
      (*values)[out - 1] += row[i].second;
    } else {
      (*cols)[out] = row[i].first;
      (*values)[out] = row[i].second;
      ++out;
    }
  }
  cols->resize(out);
  values->resize(out);
}

std::string CriteoIntToken(int64_t v) {
  if (v <= 2) return "S" + std::to_string(v);
  const double log = std::log(static_cast<double>(v));
  return "L" + std::to_string(static_cast<int64_t>(std::floor(log * log)));
}

}  // namespace mrtrain::data
