#include "engine/data/text_splits.h"

#include <algorithm>

#include "engine/data/byte_source.h"
#include "engine/data/line_reader.h"

namespace mrtrain::data {
namespace {

// T * p / P without overflow for any file size.
int64_t Boundary(int64_t total, int64_t p, int64_t num_partitions) {
  return static_cast<int64_t>(static_cast<unsigned __int128>(total) * p / num_partitions);
}

}  // namespace

Result<TextSplits> TextSplits::Create(const std::vector<std::string>& files,
                                      int64_t num_partitions) {
  std::vector<int64_t> sizes;
  std::vector<bool> whole;
  for (const std::string& file : files) {
    MRTRAIN_ASSIGN_OR_RETURN(int64_t size, FileSize(file));
    sizes.push_back(size);
    whole.push_back(IsGzipPath(file));
  }
  return TextSplits(sizes, whole, num_partitions);
}

TextSplits::TextSplits(const std::vector<int64_t>& sizes, const std::vector<bool>& whole,
                       int64_t num_partitions)
    : pieces_(num_partitions) {
  int64_t total = 0;
  for (int64_t size : sizes) total += size;
  int64_t base = 0;  // global offset of file i's first byte
  int64_t p = 0;     // the partition whose range holds `base`
  for (size_t i = 0; i < sizes.size(); base += sizes[i], ++i) {
    if (sizes[i] == 0) continue;  // no records, and no partition range may hold its offset
    while (Boundary(total, p + 1, num_partitions) <= base) ++p;
    if (whole[i]) {
      pieces_[p].push_back({static_cast<int64_t>(i), 0, LineReader::kToEnd});
      continue;
    }
    // Walk the partitions this file overlaps without moving `p` for the next file's start.
    for (int64_t q = p; q < num_partitions; ++q) {
      const int64_t begin = std::max(Boundary(total, q, num_partitions), base);
      const int64_t end = std::min(Boundary(total, q + 1, num_partitions), base + sizes[i]);
      if (begin >= base + sizes[i]) break;
      if (begin < end) pieces_[q].push_back({static_cast<int64_t>(i), begin - base, end - base});
    }
  }
}

std::string TextSplits::Describe(int64_t p, const std::vector<std::string>& files) const {
  if (pieces_[p].empty()) return "no bytes (empty partition)";
  std::string out;
  for (const Piece& piece : pieces_[p]) {
    if (!out.empty()) out += ", ";
    out += files[piece.file];
    if (piece.end == LineReader::kToEnd) {
      out += " (whole)";
    } else {
      out += " bytes [" + std::to_string(piece.begin) + ", " + std::to_string(piece.end) + ")";
    }
  }
  return out;
}

}  // namespace mrtrain::data
